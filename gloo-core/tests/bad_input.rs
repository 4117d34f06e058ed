//! Bad input never panics and always says where the problem is: `file:line:column` for what
//! cannot be read, the resource and field path for what is read but invalid.

mod common;

use common::*;
use gloo_core::load::{parse_str, Format};
use gloo_core::model::{Kind, ResourceRef};
use gloo_core::source::{ConfigSource, DirectorySource};
use gloo_core::translate::Translator;

/// The load errors of translating `yaml` (as `file:line:column: message`).
fn load_errors(yaml: &str) -> Vec<String> {
    translate(yaml).reports.load_errors.clone()
}

#[track_caller]
fn assert_one_error(yaml: &str, expected: &str) {
    let errors = load_errors(yaml);
    assert_eq!(errors, [expected], "for input:\n{yaml}");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    assert_one_error(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a\nspec: {}\n",
        "test:4:5: did not find expected ',' or '}' at line 4 column 5, while parsing a flow mapping",
    );
    // In a later document, lines count from the start of the file.
    let text = docs(&[&static_upstream("ok", 80), "a: [1, 2\n"]);
    let t = translate(&text);
    assert_eq!(
        t.reports.load_errors.len(),
        1,
        "{:?}",
        t.reports.load_errors
    );
    assert!(
        t.reports.load_errors[0].starts_with("test:9:1: "),
        "{:?}",
        t.reports.load_errors
    );
    // The good document still loads and is served.
    assert!(proxy(&t).clusters.is_empty(), "no route uses it");
    assert_eq!(status(&t, Kind::Upstream, &gs("ok")).state, Accepted);
    assert!(
        t.reports.has_rejections(),
        "a load error counts as a rejection"
    );
}

#[test]
fn documents_that_are_not_resources() {
    assert_one_error(
        "- just\n- a list\n",
        "test:1:1: invalid type: sequence, expected struct TypeMeta",
    );
    assert_one_error(
        "\u{0}binary",
        "test:1:1: control characters are not allowed",
    );
    assert_one_error(
        "kind: Upstream\nmetadata: {name: a}\n",
        "test:1:1: missing field `apiVersion`",
    );
    assert_one_error(
        "apiVersion: gloo.solo.io/v1\nmetadata: {name: a}\n",
        "test:1:1: missing field `kind`",
    );
}

#[test]
fn unknown_kind_and_wrong_api_version() {
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: Proxy\nmetadata: {name: x}\n",
        "test:1:1: unknown kind `Proxy` (apiVersion `gateway.solo.io/v1`); gloo reads Gateway, VirtualService, RouteTable, VirtualHostOption, RouteOption, Upstream, UpstreamGroup, Settings, AuthConfig, RateLimitConfig, Secret, ConfigMap, Artifact",
    );
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: Upstream\nmetadata: {name: x}\n",
        "test:1:1: kind `Upstream` has apiVersion `gloo.solo.io/v1`, not `gateway.solo.io/v1`",
    );
}

#[test]
fn unknown_field_deep_in_a_route_option() {
    let yaml = "\
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: x}
spec:
  virtualHost:
    routes:
    - matchers: [{prefix: /}]
      options:
        retries:
          retryOn: 5xx
          numRetriez: 1
      directResponseAction: {status: 200}
";
    let errors = load_errors(yaml);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("test:11:11: spec.virtualHost.routes[0].options.retries: unknown field `numRetriez`, expected one of `retryOn`"),
        "{errors:?}"
    );
    // The document is not loaded at all: no half-read VirtualService.
    let t = translate(yaml);
    assert!(t.reports.get(Kind::VirtualService, &gs("x")).is_none());
}

#[test]
fn unknown_field_in_metadata_and_at_the_top() {
    assert_one_error(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {}\nstatuz: {}\n",
        "test:5:1: unknown field `statuz`, expected one of `apiVersion`, `kind`, `metadata`, `spec`, `status`",
    );
}

#[test]
fn wrong_types_name_the_field() {
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: g}\nspec:\n  bindPort: abc\n",
        "test:5:13: spec.bindPort: invalid type: string \"abc\", expected u32",
    );
    assert_one_error(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: u}\nspec:\n  static:\n    hosts: [{addr: 1.2.3.4, port: -1}]\n",
        "test:6:35: spec.static.hosts[0].port: invalid type: integer `-1`, expected u32",
    );
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  virtualHost:\n    routes: {a: 1}\n",
        "test:6:13: spec.virtualHost.routes: invalid type: map, expected a sequence",
    );
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  virtualHost:\n    routes:\n    - options: {timeout: 10}\n      directResponseAction: {status: 200}\n",
        "test:7:26: spec.virtualHost.routes[0].options.timeout: invalid duration \"10\": expected seconds with an `s` suffix, like \"1.5s\"",
    );
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  virtualHost:\n    routes:\n    - directResponseAction: {status: 99999999999}\n",
        "test:7:38: spec.virtualHost.routes[0].directResponseAction.status: invalid value: integer `99999999999`, expected u32",
    );
}

#[test]
fn duplicate_yaml_keys_are_errors() {
    assert_one_error(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  virtualHost:\n    domains: [a]\n    domains: [b]\n",
        "test:6:5: spec.virtualHost: duplicate field `domains`",
    );
}

#[test]
fn json_errors_carry_position_and_path() {
    let text = "{\n  \"apiVersion\": \"gateway.solo.io/v1\",\n  \"kind\": \"Gateway\",\n  \"metadata\": {\"name\": \"g\"},\n  \"spec\": {\"bindPort\": \"8080\"}\n}\n";
    let parsed = parse_str(text, "gw.json", Format::Json);
    assert_eq!(parsed.errors.len(), 1);
    let e = parsed.errors[0].to_string();
    assert!(e.starts_with("gw.json:5:"), "{e}");
    assert!(
        e.contains("spec.bindPort: invalid type: string \"8080\", expected u32"),
        "{e}"
    );
    let parsed = parse_str("{\"kind\": ", "x.json", Format::Json);
    assert!(
        parsed.errors[0].to_string().starts_with("x.json:1:"),
        "{:?}",
        parsed.errors
    );
}

#[test]
fn oneof_conflicts_name_the_field_path() {
    let t = translate(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  virtualHost:\n    routes:\n    - matchers: [{prefix: /, exact: /a}]\n      routeAction: {single: {upstream: {name: a}, kube: {ref: {name: b}, port: 80}}}\n",
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("x"),
        Rejected,
        &[
            "spec.virtualHost.routes[0].matchers[0]: only one of prefix, exact may be set, found both (oneof `path_specifier`)",
            "spec.virtualHost.routes[0].routeAction.single: only one of upstream, kube may be set, found both (oneof `destination_type`)",
        ],
        &[],
    );
}

#[test]
fn missing_virtual_host_is_rejected() {
    let t =
        translate("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: x}\n");
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("x"),
        Rejected,
        &["spec.virtualHost: required"],
        &[],
    );
}

#[test]
fn duplicate_names_across_files_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let vs_text = vs(
        "default",
        "routes:\n- directResponseAction: {status: 200}\n",
    );
    std::fs::write(dir.path().join("a.yaml"), &vs_text).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        format!("# a comment\n---\n{vs_text}"),
    )
    .unwrap();
    let source = DirectorySource::load(dir.path()).unwrap();
    let snapshot = source.subscribe().borrow().clone();
    let t = Translator::new().translate(&snapshot);
    let a = dir.path().join("a.yaml").display().to_string();
    let b = dir.path().join("b.yaml").display().to_string();
    let message = format!("duplicate VirtualService gloo-system.default: defined at {a}:1 and again at {b}:3; the second definition is ignored");
    assert_eq!(
        status(&t, Kind::VirtualService, &gs("default")).warnings,
        std::slice::from_ref(&message)
    );
    // The second document is refused like an unreadable one, so `gloo validate` fails.
    assert_eq!(t.reports.load_errors, [format!("{b}:3: {message}")]);
    assert!(t.reports.has_rejections());
    // The first definition stays in force.
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_default"]);
}

#[test]
fn same_name_in_different_namespaces_or_kinds_is_not_a_duplicate() {
    let other_ns = static_upstream("a", 80).replace("namespace: gloo-system", "namespace: other");
    let t = translate(&docs(&[
        &static_upstream("a", 80),
        &other_ns,
        "apiVersion: gloo.solo.io/v1\nkind: UpstreamGroup\nmetadata: {name: a, namespace: gloo-system}\nspec:\n  destinations: [{weight: 1, destination: {upstream: {name: a}}}]\n",
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        status(&t, Kind::Upstream, &ResourceRef::new("other", "a")).state,
        Accepted
    );
}

#[test]
fn self_delegating_route_table_is_a_cycle() {
    let t = translate(&docs(&[
        &vs("default", "routes:\n- matchers: [{prefix: /a}]\n  delegateAction: {ref: {name: loop}}\n"),
        &rt(
            "{name: loop, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /a/b}]\n  delegateAction: {ref: {name: loop}}\n- matchers: [{prefix: /a/ok}]\n  directResponseAction: {status: 200}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("loop"),
        Rejected,
        &["spec.routes[0].delegateAction: delegation cycle: VirtualService gloo-system.default -> RouteTable gloo-system.loop -> RouteTable gloo-system.loop"],
        &[],
    );
    // The rest of the table still resolves.
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/a/ok"]
    );
}

#[test]
fn selector_cycle_terminates_with_an_error() {
    // Every table selects every table with the label, itself included.
    let table = |name: &str| {
        rt(
            &format!("{{name: {name}, namespace: gloo-system, labels: {{loop: 'yes'}}}}"),
            "routes:\n- matchers: [{prefix: /}]\n  delegateAction: {selector: {labels: {loop: 'yes'}}}\n",
        )
    };
    let t = translate(&docs(&[
        &vs("default", "routes:\n- matchers: [{prefix: /}]\n  delegateAction: {selector: {labels: {loop: 'yes'}}}\n"),
        &table("x"),
        &table("y"),
    ]));
    let x = status(&t, Kind::RouteTable, &gs("x"));
    let y = status(&t, Kind::RouteTable, &gs("y"));
    assert_eq!(
        (x.state, y.state),
        (Rejected, Rejected),
        "{}",
        t.reports.to_text()
    );
    assert!(
        x.errors.iter().chain(&y.errors).all(|e| e.starts_with("spec.routes[0].delegateAction: delegation cycle: VirtualService gloo-system.default -> RouteTable")),
        "{}",
        t.reports.to_text()
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_default").is_empty());
}

/// Every prefix of a valid config (cut mid-token, mid-document) is read and translated without
/// panicking, and every problem it has carries a position or a field path.
#[test]
fn truncated_config_never_panics() {
    let full = docs(&[
        &static_upstream("up", 8080),
        &vs(
            "default",
            "
            domains: ['*']
            routes:
            - matchers: [{prefix: /a, headers: [{name: x, value: 'a+', regex: true}]}]
              options: {timeout: 5s, retries: {retryOn: 5xx, numRetries: 2}}
              delegateAction: {ref: {name: rt}}
            - matchers: [{regex: '/b/[0-9]+'}]
              routeAction: {multi: {destinations: [{weight: 1, destination: {upstream: {name: up}}}]}}
            ",
        ),
        &rt("{name: rt, namespace: gloo-system}", "routes:\n- matchers: [{prefix: /a/x}]\n  routeAction: {single: {upstream: {name: up}}}\n"),
        &gateway("{name: gw, namespace: gloo-system}", "bindPort: 8080\nhttpGateway: {}\n"),
    ]);
    assert_no_rejections(&translate(&full));
    let mut translator = Translator::new();
    let cuts: Vec<usize> = (0..=full.len())
        .filter(|i| full.is_char_boundary(*i))
        .collect();
    for &cut in &cuts {
        let t = translate_with(&mut translator, &full[..cut]);
        for e in &t.reports.load_errors {
            let mut parts = e.splitn(4, ':');
            let (file, line, column) = (parts.next(), parts.next(), parts.next());
            assert_eq!(file, Some(SOURCE), "{e}");
            assert!(
                line.is_some_and(|l| l.parse::<usize>().is_ok_and(|l| l >= 1)),
                "{e}"
            );
            assert!(
                column.is_some_and(|c| c.parse::<usize>().is_ok_and(|c| c >= 1)),
                "{e}"
            );
        }
    }
}

/// Envoy reads the values of the headers a route adds as substitution formats and refuses
/// the whole route configuration over a `%` that starts no command: a VirtualService with
/// `value: 100%` is rejected (it has no accepted version, so it is not served), with a message
/// naming where, instead of reaching the data plane. `%%` and command operators are accepted
/// and reach the route as written.
#[test]
fn a_header_value_envoy_cannot_parse_rejects_the_virtual_service_naming_where() {
    let headers = |second: &str| {
        format!(
            "headerManipulation:
  responseHeadersToAdd:
  - header: {{key: x-ok, value: fine}}
  - header: {{key: x-share, value: '{second}'}}
"
        )
    };
    let t = translate(&docs(&[
        &up(),
        &vs_with_options("bad", "bad.example", "", &headers("100%")),
        &vs_with_options(
            "good",
            "good.example",
            "",
            &headers("100%% of %REQ(x-tier)% at %START_TIME(%s)%"),
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("bad"),
        Rejected,
        &["spec.virtualHost.routes[0].options.headerManipulation.responseHeadersToAdd[1].header.value: Envoy reads header values as substitution formats: the % at byte 3 starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%"],
        &[],
    );
    let rc = route_config(&t);
    assert!(
        !vhost_names(rc).contains(&"gloo-system_bad".to_string()),
        "{:?}",
        vhost_names(rc)
    );
    assert_status(&t, Kind::VirtualService, &gs("good"), Accepted, &[], &[]);
    let route = &vhost_json(&t, "good")["routes"][0];
    assert_eq!(
        route["responseHeadersToAdd"][1]["header"],
        serde_json::json!({"key": "x-share", "value": "100%% of %REQ(x-tier)% at %START_TIME(%s)%"})
    );
}

/// Every place a `headerManipulation` is written gets the checks Gloo's headers plugin and
/// Envoy's route configuration make, on the resource that sets it: a VirtualService's virtual
/// host, routes and weighted destinations, a RouteTable's routes, VirtualHostOption,
/// RouteOption and UpstreamGroup resources (the VirtualServices using the rejected option
/// resources are served without them, with a warning), and the headers of a `headerSecretRef`'s
/// Secret. Request headers to add may not be pseudo-headers, `host` or non-tokens; response
/// headers to add may not be pseudo-headers or `host` (Gloo and Envoy refuse them there too)
/// but need not be tokens; Envoy removes neither pseudo-headers nor `host` at this level.
#[test]
fn header_manipulation_gloo_or_envoy_would_refuse_rejects_the_resource_that_sets_it() {
    const PERCENT: &str = "Envoy reads header values as substitution formats: the % at byte 1 starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%";
    let t = translate(&docs(&[
        &up(),
        "apiVersion: v1
kind: Secret
metadata: {name: api-headers, namespace: gloo-system}
type: gloo.solo.io/header
stringData: {x-api-key: '5%'}
",
        &vs(
            "everywhere",
            "
            domains: [everywhere.example]
            options:
              headerManipulation:
                requestHeadersToAdd:
                - header: {key: ':authority', value: a}
                - header: {key: 'x tier', value: a}
                - headerSecretRef: {name: api-headers}
                - {}
                requestHeadersToRemove: [host, '']
            routes:
            - matchers: [{prefix: /a}]
              options:
                headerManipulation:
                  responseHeadersToAdd:
                  - header: {key: ':status', value: '200'}
                  - header: {key: Host, value: a}
                  - header: {key: 'x odd name', value: fine}
                  - append: true
                  responseHeadersToRemove: [':status', x-fine]
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            - matchers: [{prefix: /b}]
              routeAction:
                multi:
                  destinations:
                  - destination: {upstream: {name: up, namespace: gloo-system}}
                    weight: 1
                    options:
                      headerManipulation:
                        requestHeadersToAdd: [{header: {key: x-a, value: '5%'}}]
            ",
        ),
        &rt(
            "{name: table, namespace: gloo-system}",
            "
            routes:
            - matchers: [{prefix: /t}]
              options:
                headerManipulation:
                  responseHeadersToAdd: [{header: {key: x-a, value: '5%'}}]
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            ",
        ),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: vho, namespace: gloo-system}",
            "options: {headerManipulation: {responseHeadersToAdd: [{header: {key: x-a, value: '5%'}}]}}",
        ),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            "options: {headerManipulation: {requestHeadersToRemove: [':path']}}",
        ),
        &resource(
            "gloo.solo.io/v1",
            "UpstreamGroup",
            "{name: group, namespace: gloo-system}",
            "
            destinations:
            - destination: {upstream: {name: up, namespace: gloo-system}}
              weight: 1
              options:
                headerManipulation:
                  responseHeadersToAdd: [{header: {key: x-a, value: '5%'}}]
            ",
        ),
        &vs(
            "users",
            "
            domains: [users.example]
            optionsConfigRefs: {delegateOptions: [{name: vho}]}
            routes:
            - matchers: [{prefix: /}]
              optionsConfigRefs: {delegateOptions: [{name: ro}]}
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("everywhere"),
        Rejected,
        &[
            "spec.virtualHost.options.headerManipulation.requestHeadersToAdd[0].header.key: :-prefixed or host headers may not be modified, found \":authority\"",
            "spec.virtualHost.options.headerManipulation.requestHeadersToAdd[1].header.key: \"x tier\" is an invalid HTTP header key",
            "spec.virtualHost.options.headerManipulation.requestHeadersToAdd[3]: set one of header, headerSecretRef",
            "spec.virtualHost.options.headerManipulation.requestHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \"host\"",
            "spec.virtualHost.options.headerManipulation.requestHeadersToRemove[1]: empty HTTP header names are not allowed",
            "spec.virtualHost.routes[0].options.headerManipulation.responseHeadersToAdd[0].header.key: :-prefixed headers cannot be set: \":status\"",
            "spec.virtualHost.routes[0].options.headerManipulation.responseHeadersToAdd[1].header.key: cannot set Host header in response headers",
            "spec.virtualHost.routes[0].options.headerManipulation.responseHeadersToAdd[3].header: required (header section of header value option cannot be nil)",
            "spec.virtualHost.routes[0].options.headerManipulation.responseHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \":status\"",
            &format!("spec.virtualHost.routes[1].routeAction.multi.destinations[0].options.headerManipulation.requestHeadersToAdd[0].header.value: {PERCENT}"),
            &format!("spec.virtualHost.options.headerManipulation.requestHeadersToAdd[2].headerSecretRef: Secret gloo-system.api-headers, the value of \"x-api-key\": {PERCENT}"),
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("table"),
        Rejected,
        &[&format!("spec.routes[0].options.headerManipulation.responseHeadersToAdd[0].header.value: {PERCENT}")],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualHostOption,
        &gs("vho"),
        Rejected,
        &[&format!(
            "spec.options.headerManipulation.responseHeadersToAdd[0].header.value: {PERCENT}"
        )],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("ro"),
        Rejected,
        &["spec.options.headerManipulation.requestHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \":path\""],
        &[],
    );
    assert_status(
        &t,
        Kind::UpstreamGroup,
        &gs("group"),
        Rejected,
        &[&format!("spec.destinations[0].options.headerManipulation.responseHeadersToAdd[0].header.value: {PERCENT}")],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("users"),
        Warning,
        &[],
        &[
            "spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.vho is rejected; its options are not applied",
            "spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.ro is rejected; its options are not applied",
        ],
    );
    // Served without the rejected options' headers.
    let users = vhost_json(&t, "users");
    assert!(users.get("responseHeadersToAdd").is_none(), "{users:#}");
    assert!(
        users["routes"][0].get("requestHeadersToRemove").is_none(),
        "{users:#}"
    );
}
