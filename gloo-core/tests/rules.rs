//! One test per Gloo rule gloo-core enforces, each with the exact state and message it reports.

mod common;

use common::*;
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use gloo_core::model::{Kind, ResourceRef};
use gloo_core::translate::{Endpoint, Endpoints, Translator};

/// A VirtualService with one domain and one route to `up` at `prefix`.
fn simple_vs(name: &str, domain: &str, prefix: &str) -> String {
    vs(
        name,
        &format!(
            "domains: ['{domain}']\nroutes:\n- matchers: [{{prefix: {prefix}}}]\n  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}\n"
        ),
    )
}

fn vs_key(name: &str) -> ResourceRef {
    gs(name)
}

// ----- destinations --------------------------------------------------------------------------

#[test]
fn route_to_missing_upstream_is_a_warning_and_the_route_stays() {
    let t = translate(&vs(
        "default",
        "
        domains: ['*']
        routes:
        - matchers: [{prefix: /}]
          routeAction: {single: {upstream: {name: nope, namespace: gloo-system}}}
        ",
    ));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.single.upstream: Upstream gloo-system.nope not found; the route answers 503 until it exists"],
    );
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    assert_eq!(routes.len(), 1);
    assert_eq!(cluster_of(&routes[0]), "nope_gloo-system");
    // The proxy status carries the warning on the route.
    let vh = &t.reports.proxies["gateway-proxy"].listeners["listener-::-8080"].virtual_hosts
        ["gloo-system_default"];
    assert_eq!(vh.state, Warning);
    assert_eq!(vh.routes[0].warnings.len(), 1);
}

#[test]
fn consul_destination_routes_to_the_discovered_upstreams_cluster() {
    // The upstream Consul discovery publishes for service `web` (Gloo's naming).
    let discovered = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: 'consul-svc:web', namespace: gloo-system}\nspec:\n  consul: {serviceName: web, dataCenters: [dc1], serviceTags: [v1]}\n";
    let route = vs(
        "default",
        "
        domains: ['*']
        routes:
        - matchers: [{prefix: /}]
          routeAction: {single: {consul: {serviceName: web}}}
        ",
    );
    let mut translator = Translator::new();
    let t = translate_with(&mut translator, &docs(&[discovered, &route]));
    assert_no_rejections(&t);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    assert_eq!(cluster_of(&routes[0]), "consul-svc:web_gloo-system");
    // The cluster exists and is fed over EDS.
    assert!(proxy(&t)
        .clusters
        .contains_key("consul-svc:web_gloo-system"));
    let mut endpoints = Endpoints::new();
    endpoints.insert(gs("consul-svc:web"), vec![Endpoint::new("10.0.0.7", 8080)]);
    let updated = translator.update_endpoints(endpoints).clone();
    let cla = updated["gateway-proxy"].endpoints["consul-svc:web_gloo-system"].resource();
    assert_eq!(cla.endpoints[0].lb_endpoints.len(), 1);

    // Until discovery finds the service, the route is a warning and answers 503.
    let t = translate(&route);
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.single.consul: Upstream gloo-system.consul-svc:web (Consul service web) not found; the route answers 503 until Consul discovery finds the service"],
    );
    // A Consul destination must name its service.
    let t = translate(&vs(
        "default",
        "routes:\n- routeAction: {single: {consul: {tags: [v1]}}}\n",
    ));
    assert_eq!(
        status(&t, Kind::VirtualService, &vs_key("default")).errors,
        ["spec.virtualHost.routes[0].routeAction.single.consul.serviceName: required"]
    );
}

// ----- domains -------------------------------------------------------------------------------

#[test]
fn duplicate_domain_across_virtual_services_rejects_the_later_one() {
    let t = translate(&docs(&[
        &up(),
        &simple_vs("b", "example.com", "/b"),
        &simple_vs("a", "example.com", "/a"),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("b"),
        Rejected,
        &["spec.virtualHost.domains: domain \"example.com\" is already served by VirtualService gloo-system.a on Gateway gloo-system.gateway-proxy; domains must be unique per gateway"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("a"),
        Warning,
        &[],
        &["spec.virtualHost.domains: VirtualService gloo-system.b also claims domain \"example.com\" on Gateway gloo-system.gateway-proxy and was rejected"],
    );
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_a"]);
}

#[test]
fn duplicate_domain_within_one_virtual_service_is_a_warning() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            domains: [a.com, b.com, a.com]
            routes:
            - routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Warning,
        &[],
        &["spec.virtualHost.domains: \"a.com\" is listed twice"],
    );
    assert_eq!(
        route_config(&t).virtual_hosts[0].domains,
        ["a.com", "b.com"]
    );
}

#[test]
fn invalid_domain_wildcard_is_rejected() {
    let t = translate(&docs(&[&up(), &simple_vs("default", "foo.*.com", "/")]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.domains[0]: \"foo.*.com\": a wildcard may only be the first or last character, once"],
        &[],
    );
    assert!(route_config(&t).virtual_hosts.is_empty());
}

#[test]
fn only_one_catch_all_virtual_service_per_gateway() {
    // Neither lists domains, so both default to `*`.
    let catch_all = |name: &str| {
        vs(
            name,
            "routes:\n- routeAction: {single: {upstream: {name: up}}}\n",
        )
    };
    let t = translate(&docs(&[&up(), &catch_all("one"), &catch_all("two")]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("two"),
        Rejected,
        &["spec.virtualHost.domains: domain \"*\" is already served by VirtualService gloo-system.one on Gateway gloo-system.gateway-proxy; domains must be unique per gateway"],
        &[],
    );
    assert_eq!(
        status(&t, Kind::VirtualService, &vs_key("one")).state,
        Warning
    );
    let rc = route_config(&t);
    assert_eq!(vhost_names(rc), ["gloo-system_one"]);
    assert_eq!(rc.virtual_hosts[0].domains, ["*"]);
}

// ----- delegation ----------------------------------------------------------------------------

fn delegating_vs(prefix: &str, delegate: &str) -> String {
    vs(
        "default",
        &format!("domains: ['*']\nroutes:\n- matchers: [{{prefix: {prefix}}}]\n  delegateAction: {delegate}\n"),
    )
}

fn leaf_rt(metadata: &str, prefixes: &[&str]) -> String {
    let routes: String = prefixes
        .iter()
        .map(|p| format!("- matchers: [{{prefix: {p}}}]\n  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}\n"))
        .collect();
    rt(metadata, &format!("routes:\n{routes}"))
}

#[test]
fn delegation_by_reference() {
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{ref: {name: rt1}}"),
        &leaf_rt("{name: rt1, namespace: gloo-system}", &["/a/one", "/a/two"]),
    ]));
    assert_no_rejections(&t);
    assert_status(&t, Kind::RouteTable, &gs("rt1"), Accepted, &[], &[]);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    assert_eq!(paths(routes), ["prefix:/a/one", "prefix:/a/two"]);
    assert_eq!(
        routes[0].name,
        "gloo-system_default-route-0-gloo-system_rt1-route-0"
    );
    assert_eq!(cluster_of(&routes[1]), "up_gloo-system");
    let vh = &t.reports.proxies["gateway-proxy"].listeners["listener-::-8080"].virtual_hosts
        ["gloo-system_default"];
    assert_eq!(
        vh.routes[1].source,
        "VirtualService gloo-system.default routes[0] > RouteTable gloo-system.rt1 routes[1]"
    );
}

#[test]
fn delegation_by_selector_uses_labels_and_namespaces() {
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{selector: {labels: {team: a}, namespaces: [team1]}}"),
        &leaf_rt(
            "{name: match, namespace: team1, labels: {team: a}}",
            &["/a/match"],
        ),
        &leaf_rt(
            "{name: other-ns, namespace: team2, labels: {team: a}}",
            &["/a/other-ns"],
        ),
        &leaf_rt(
            "{name: other-label, namespace: team1, labels: {team: b}}",
            &["/a/other-label"],
        ),
        &leaf_rt(
            "{name: default-ns, namespace: gloo-system, labels: {team: a}}",
            &["/a/default-ns"],
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/a/match"]
    );

    // Without `namespaces`, only the VirtualService's own namespace is searched.
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{selector: {labels: {team: a}}}"),
        &leaf_rt(
            "{name: match, namespace: team1, labels: {team: a}}",
            &["/a/match"],
        ),
        &leaf_rt(
            "{name: default-ns, namespace: gloo-system, labels: {team: a}}",
            &["/a/default-ns"],
        ),
    ]));
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/a/default-ns"]
    );

    // `*` searches every namespace.
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{selector: {labels: {team: a}, namespaces: ['*']}}"),
        &leaf_rt(
            "{name: match, namespace: team1, labels: {team: a}}",
            &["/a/match"],
        ),
        &leaf_rt(
            "{name: default-ns, namespace: gloo-system, labels: {team: a}}",
            &["/a/default-ns"],
        ),
    ]));
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/a/default-ns", "prefix:/a/match"]
    );
}

#[test]
fn selected_route_tables_are_ordered_by_ascending_weight() {
    let table = |name: &str, weight: i32| {
        rt(
            &format!("{{name: {name}, namespace: gloo-system, labels: {{app: x}}}}"),
            &format!("weight: {weight}\nroutes:\n- matchers: [{{prefix: /{name}}}]\n  routeAction: {{single: {{upstream: {{name: up}}}}}}\n"),
        )
    };
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/", "{selector: {labels: {app: x}}}"),
        &table("heavy", 30),
        &table("light", -5),
        &table("middle", 10),
        &table("zero", 0),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        [
            "prefix:/light",
            "prefix:/zero",
            "prefix:/middle",
            "prefix:/heavy"
        ]
    );
}

#[test]
fn child_route_outside_the_delegating_prefix_is_dropped_with_a_warning() {
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{ref: {name: rt1}}"),
        &leaf_rt("{name: rt1, namespace: gloo-system}", &["/b", "/a/ok"]),
    ]));
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("rt1"),
        Warning,
        &[],
        &["spec.routes[0].matchers[0]: prefix \"/b\" does not start with the delegating prefix \"/a\"; the route is dropped"],
    );
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/a/ok"]
    );
}

#[test]
fn delegating_route_with_two_matchers_is_rejected() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /a}, {prefix: /b}]
              delegateAction: {ref: {name: rt1}}
            ",
        ),
        &leaf_rt("{name: rt1, namespace: gloo-system}", &["/a/x"]),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[0].matchers: a route that delegates may have at most one matcher, found 2"],
        &[],
    );
    assert!(route_config(&t).virtual_hosts.is_empty());
}

#[test]
fn delegating_route_with_an_exact_matcher_is_rejected() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{exact: /a}]
              delegateAction: {ref: {name: rt1}}
            ",
        ),
        &leaf_rt("{name: rt1, namespace: gloo-system}", &["/a"]),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[0].matchers[0]: a route that delegates must match a path prefix"],
        &[],
    );
}

#[test]
fn delegation_cycle_is_an_error_naming_the_chain() {
    let delegating_rt = |name: &str, to: &str| {
        rt(
            &format!("{{name: {name}, namespace: gloo-system}}"),
            &format!("routes:\n- matchers: [{{prefix: /a}}]\n  delegateAction: {{ref: {{name: {to}}}}}\n"),
        )
    };
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{ref: {name: a}}"),
        &delegating_rt("a", "b"),
        &delegating_rt("b", "a"),
    ]));
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("b"),
        Rejected,
        &["spec.routes[0].delegateAction: delegation cycle: VirtualService gloo-system.default -> RouteTable gloo-system.a -> RouteTable gloo-system.b -> RouteTable gloo-system.a"],
        &[],
    );
    // No route is produced by the cycle, and nothing panics or loops.
    assert!(vhost_routes(route_config(&t), "gloo-system_default").is_empty());
}

#[test]
fn missing_route_table_reference_is_a_warning() {
    let t = translate(&docs(&[&up(), &delegating_vs("/a", "{ref: {name: nope}}")]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].delegateAction: RouteTable gloo-system.nope not found; the route is dropped"],
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_default").is_empty());
}

#[test]
fn selector_matching_nothing_is_a_warning() {
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/a", "{selector: {labels: {team: nobody}}}"),
        &leaf_rt(
            "{name: rt1, namespace: gloo-system, labels: {team: a}}",
            &["/a"],
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].delegateAction.selector: no RouteTable matches the selector; the route is dropped"],
    );
}

#[test]
fn options_shallow_merge_with_the_child_winning() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /a}]
              options: {timeout: 10s, prefixRewrite: /parent}
              delegateAction: {ref: {name: rt1}}
            ",
        ),
        &rt(
            "{name: rt1, namespace: gloo-system}",
            "
            routes:
            - matchers: [{prefix: /a/retries}]
              options: {retries: {retryOn: 5xx, numRetries: 3}}
              routeAction: {single: {upstream: {name: up}}}
            - matchers: [{prefix: /a/timeout}]
              options: {timeout: 5s}
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    let first = route_action(&routes[0]);
    assert_eq!(first.timeout.as_ref().map(|d| d.seconds), Some(10));
    let retry = first.retry_policy.as_ref().expect("child retries");
    assert_eq!(retry.retry_on, "5xx");
    assert_eq!(retry.num_retries.as_ref().map(|n| n.value), Some(3));
    assert_eq!(first.prefix_rewrite, "/parent");
    let second = route_action(&routes[1]);
    assert_eq!(
        second.timeout.as_ref().map(|d| d.seconds),
        Some(5),
        "the child's timeout wins"
    );
    assert!(second.retry_policy.is_none());
    assert_eq!(second.prefix_rewrite, "/parent");
}

#[test]
fn inheritable_matchers_give_children_the_parent_headers() {
    let yaml = |inherit: bool| {
        docs(&[
            &up(),
            &vs(
                "default",
                &format!(
                    "routes:\n- matchers: [{{prefix: /a, headers: [{{name: x-team, value: blue}}]}}]\n  inheritableMatchers: {inherit}\n  delegateAction: {{ref: {{name: rt1}}}}\n"
                ),
            ),
            &rt(
                "{name: rt1, namespace: gloo-system}",
                "routes:\n- matchers: [{prefix: /a/b, headers: [{name: x-own}]}]\n  routeAction: {single: {upstream: {name: up}}}\n",
            ),
        ])
    };
    let t = translate(&yaml(true));
    assert_no_rejections(&t);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    let headers = &routes[0].r#match.as_ref().unwrap().headers;
    let names: Vec<&str> = headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["x-team", "x-own"]);
    match &headers[0].header_match_specifier {
        Some(HeaderMatchSpecifier::StringMatch(m)) => {
            assert_eq!(m.match_pattern, Some(envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern::Exact("blue".into())))
        }
        other => panic!("{other:?}"),
    }

    let t = translate(&yaml(false));
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    let names: Vec<String> = routes[0]
        .r#match
        .as_ref()
        .unwrap()
        .headers
        .iter()
        .map(|h| h.name.clone())
        .collect();
    assert_eq!(
        names,
        ["x-own"],
        "without inheritableMatchers the parent's headers are not added"
    );
}

#[test]
fn inheritable_path_matchers_give_children_the_parent_path() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /parent}]
              inheritablePathMatchers: true
              delegateAction: {ref: {name: rt1}}
            ",
        ),
        &rt(
            "{name: rt1, namespace: gloo-system}",
            "
            routes:
            - matchers: [{exact: /somewhere-else, methods: [GET]}]
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    assert_eq!(paths(routes), ["prefix:/parent"]);
    // The child's own non-path matchers stay.
    assert_eq!(
        routes[0].r#match.as_ref().unwrap().headers[0].name,
        ":method"
    );
}

// ----- route validation ----------------------------------------------------------------------

#[test]
fn invalid_regex_in_a_matcher_is_rejected_with_its_field_path() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /ok}]
              routeAction: {single: {upstream: {name: up}}}
            - matchers: [{prefix: /x}, {regex: '/(unclosed'}]
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[1].matchers[1].regex: invalid regex \"/(unclosed\": error: unclosed group"],
        &[],
    );
    assert!(
        route_config(&t).virtual_hosts.is_empty(),
        "a rejected VirtualService with no accepted version is not served"
    );
}

#[test]
fn route_with_no_action_is_rejected() {
    let t = translate(&vs("default", "routes:\n- matchers: [{prefix: /}]\n"));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[0]: route has no action: set one of routeAction, redirectAction, directResponseAction, delegateAction"],
        &[],
    );
}

#[test]
fn route_with_two_actions_is_rejected_as_a_oneof() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - routeAction: {single: {upstream: {name: up}}}
              directResponseAction: {status: 200}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[0]: only one of routeAction, directResponseAction may be set, found both (oneof `action`)"],
        &[],
    );
}

#[test]
fn multi_destination_with_all_weights_zero_is_rejected() {
    let t = translate(&docs(&[
        &up(),
        &static_upstream("up2", 9090),
        &vs(
            "default",
            "
            routes:
            - routeAction:
                multi:
                  destinations:
                  - {weight: 0, destination: {upstream: {name: up}}}
                  - {destination: {upstream: {name: up2}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &["spec.virtualHost.routes[0].routeAction.multi.destinations: the weights add up to 0; at least one destination needs a positive weight"],
        &[],
    );
}

// ----- resources -----------------------------------------------------------------------------

#[test]
fn duplicate_resource_names_both_origins() {
    // Each upstream document is 6 lines; the second starts at line 8.
    let t = translate(&docs(&[
        &static_upstream("a", 80),
        &static_upstream("a", 81),
    ]));
    let s = status(&t, Kind::Upstream, &gs("a"));
    let message = "duplicate Upstream gloo-system.a: defined at test:1 and again at test:8; the second definition is ignored";
    // The first definition stays in force and serves; the duplicate document is refused.
    assert_eq!(s.state, Warning);
    assert_eq!(s.warnings, [message]);
    assert_eq!(t.reports.load_errors, [format!("test:8: {message}")]);
}

#[test]
fn duplicate_upstream_keeps_the_first_definition_in_force() {
    let t = translate(&docs(&[
        &static_upstream("up", 80),
        &static_upstream("up", 81),
        &vs(
            "default",
            "routes:\n- routeAction: {single: {upstream: {name: up}}}\n",
        ),
    ]));
    let proxy = &t.proxies["gateway-proxy"];
    assert!(proxy.clusters.contains_key("up_gloo-system"));
    let endpoints = proxy.endpoints["up_gloo-system"].resource();
    let port = endpoints.endpoints[0].lb_endpoints.len();
    assert_eq!(port, 1);
}

#[test]
fn missing_metadata_name_is_rejected() {
    let t = translate("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {namespace: gloo-system}\nspec:\n  static: {hosts: [{addr: 1.2.3.4, port: 80}]}\n");
    assert_status(
        &t,
        Kind::Upstream,
        &gs(""),
        Rejected,
        &["metadata.name: required (test:1)"],
        &[],
    );
}

#[test]
fn upstream_with_no_type_is_rejected() {
    let t = translate("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: empty, namespace: gloo-system}\nspec: {}\n");
    assert_status(
        &t,
        Kind::Upstream,
        &gs("empty"),
        Rejected,
        &["spec: no upstream type: set one of static, kube, consul, awsEc2, aws, pipe, azure, gcp"],
        &[],
    );
}

#[test]
fn static_upstream_with_port_zero_is_rejected_and_gets_no_cluster() {
    let t = translate(&docs(&[
        &static_upstream("up", 0),
        &simple_vs("default", "*", "/"),
    ]));
    assert_status(
        &t,
        Kind::Upstream,
        &gs("up"),
        Rejected,
        &["spec.static.hosts[0].port: 0 is not a port (1-65535)"],
        &[],
    );
    assert!(
        proxy(&t).clusters.is_empty(),
        "{:?}",
        proxy(&t).clusters.keys()
    );
}

// ----- gateways ------------------------------------------------------------------------------

#[test]
fn gateway_with_bind_port_zero_is_rejected() {
    let t = translate(&docs(&[
        &up(),
        &simple_vs("default", "*", "/"),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindAddress: '::'\nbindPort: 0\nhttpGateway: {}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &["spec.bindPort: 0 is not a port (1-65535)"],
        &[],
    );
    assert!(t.proxies.is_empty(), "{:?}", t.proxies.keys());
}

#[test]
fn two_gateways_on_one_address_and_port_of_a_proxy() {
    let t = translate(&docs(&[
        &up(),
        &simple_vs("default", "*", "/"),
        &gateway(
            "{name: g1, namespace: gloo-system}",
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway: {}\n",
        ),
        &gateway(
            "{name: g2, namespace: gloo-system}",
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway: {}\n",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("g1"), Accepted, &[], &[]);
    assert_status(
        &t,
        Kind::Gateway,
        &gs("g2"),
        Rejected,
        &["spec.bindPort: :::8080 on proxy gateway-proxy is already bound by Gateway gloo-system.g1"],
        &[],
    );
    assert_eq!(
        proxy(&t).listeners.keys().collect::<Vec<_>>(),
        ["listener-::-8080"]
    );
}

#[test]
fn proxy_names_split_virtual_services_across_proxies() {
    let t = translate(&docs(&[
        &up(),
        &simple_vs("one", "one.com", "/"),
        &simple_vs("two", "two.com", "/"),
        &gateway(
            "{name: ga, namespace: gloo-system}",
            "bindPort: 8080\nproxyNames: [proxy-a]\nhttpGateway: {virtualServices: [{name: one}]}\n",
        ),
        &gateway(
            "{name: gb, namespace: gloo-system}",
            "bindPort: 8080\nproxyNames: [proxy-b]\nhttpGateway: {virtualServices: [{name: two}]}\n",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(t.proxies.keys().collect::<Vec<_>>(), ["proxy-a", "proxy-b"]);
    let a = route_config_of(proxy_named(&t, "proxy-a"), "listener-::-8080-routes");
    let b = route_config_of(proxy_named(&t, "proxy-b"), "listener-::-8080-routes");
    assert_eq!(vhost_names(a), ["gloo-system_one"]);
    assert_eq!(vhost_names(b), ["gloo-system_two"]);
}

#[test]
fn virtual_service_selector_selects_by_label() {
    let labelled = simple_vs("picked", "picked.com", "/").replacen(
        "namespace: gloo-system}",
        "namespace: gloo-system, labels: {app: shop}}",
        1,
    );
    let t = translate(&docs(&[
        &up(),
        &labelled,
        &simple_vs("ignored", "ignored.com", "/"),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway: {virtualServiceSelector: {app: shop}}\n",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_picked"]);
}

#[test]
fn ssl_gateway_takes_only_virtual_services_with_ssl_config() {
    let secure = vs(
        "secure",
        "domains: [secure.com]\nroutes:\n- routeAction: {single: {upstream: {name: up}}}\n",
    )
    .replace(
        "spec:\n",
        "spec:\n  sslConfig: {sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}}\n",
    );
    let t = translate(&docs(&[
        &up(),
        &secure,
        &simple_vs("plain", "plain.com", "/"),
    ]));
    assert_no_rejections(&t);
    let p = proxy(&t);
    assert_eq!(
        vhost_names(route_config_of(p, "listener-::-8080-routes")),
        ["gloo-system_plain"]
    );
    assert_eq!(
        vhost_names(route_config_of(p, "listener-::-8443-routes")),
        ["gloo-system_secure"]
    );
}

#[test]
fn without_gateways_the_default_gateways_serve_gateway_proxy() {
    let t = translate(&docs(&[&up(), &simple_vs("default", "*", "/")]));
    assert_no_rejections(&t);
    assert_eq!(t.proxies.keys().collect::<Vec<_>>(), ["gateway-proxy"]);
    let p = proxy(&t);
    assert!(
        p.listeners.contains_key("listener-::-8080"),
        "{:?}",
        p.listeners.keys()
    );
    let listener = p.listeners["listener-::-8080"].resource();
    assert_eq!(listener.name, "listener-::-8080");
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_default"]);
    assert!(p.clusters.contains_key("up_gloo-system"));
}

// ----- last known good -----------------------------------------------------------------------

const KEEPS_SERVING: &str = "the last accepted version keeps serving";

#[test]
fn rejected_virtual_service_edit_keeps_the_last_accepted_version() {
    let mut translator = Translator::new();
    let v1 = docs(&[
        &up(),
        &simple_vs("a", "a.com", "/a-v1"),
        &simple_vs("b", "b.com", "/b-v1"),
    ]);
    let t1 = translate_with(&mut translator, &v1);
    assert_no_rejections(&t1);

    let broken_a = vs(
        "a",
        "
        domains: [a.com]
        routes:
        - matchers: [{regex: '('}]
          routeAction: {single: {upstream: {name: up}}}
        ",
    );
    let v2 = docs(&[
        &up(),
        &broken_a,
        &simple_vs("b", "b.com", "/b-v2"),
        &simple_vs("never", "never.com", "/"),
    ]);
    let v2 = v2.replace(
        "name: never, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['never.com']",
        "name: never, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['never..*.com']",
    );
    let t2 = translate_with(&mut translator, &v2);
    assert_status(
        &t2,
        Kind::VirtualService,
        &gs("a"),
        Rejected,
        &["spec.virtualHost.routes[0].matchers[0].regex: invalid regex \"(\": error: unclosed group", KEEPS_SERVING],
        &[],
    );
    assert_status(&t2, Kind::VirtualService, &gs("b"), Accepted, &[], &[]);
    // A VirtualService that was never valid is simply not served.
    let never = status(&t2, Kind::VirtualService, &gs("never"));
    assert_eq!(never.state, Rejected);
    assert!(
        !never.errors.iter().any(|e| e == KEEPS_SERVING),
        "{never:?}"
    );
    let rc = route_config(&t2);
    assert_eq!(vhost_names(rc), ["gloo-system_a", "gloo-system_b"]);
    assert_eq!(paths(vhost_routes(rc, "gloo-system_a")), ["prefix:/a-v1"]);
    assert_eq!(paths(vhost_routes(rc, "gloo-system_b")), ["prefix:/b-v2"]);

    // Fixing it serves the fix.
    let v3 = docs(&[
        &up(),
        &simple_vs("a", "a.com", "/a-v3"),
        &simple_vs("b", "b.com", "/b-v2"),
    ]);
    let t3 = translate_with(&mut translator, &v3);
    assert_no_rejections(&t3);
    assert_eq!(
        paths(vhost_routes(route_config(&t3), "gloo-system_a")),
        ["prefix:/a-v3"]
    );
}

#[test]
fn rejected_gateway_edit_keeps_the_last_accepted_version() {
    let mut translator = Translator::new();
    let gw = |port: u32, options: &str| {
        gateway(
            "{name: gw, namespace: gloo-system}",
            &format!("bindPort: {port}\nhttpGateway: {{{options}}}\n"),
        )
    };
    let listeners = |t: &gloo_core::translate::Translation| {
        proxy(t).listeners.keys().cloned().collect::<Vec<_>>()
    };
    let app = simple_vs("a", "a.com", "/a");
    let t1 = translate_with(&mut translator, &docs(&[&up(), &app, &gw(8080, "")]));
    assert_no_rejections(&t1);
    assert_eq!(listeners(&t1), ["listener-::-8080"]);

    // A bad edit (a port move together with a bucket Gloo refuses) is Rejected and the
    // accepted version keeps its listener: the port does not move, the routes stay.
    let bad = "options: {httpLocalRatelimit: {defaultLimit: {maxTokens: 5, fillInterval: 0.010s}}}";
    let t2 = translate_with(&mut translator, &docs(&[&up(), &app, &gw(8081, bad)]));
    assert_status(
        &t2,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &[
            "spec.httpGateway.options.httpLocalRatelimit.defaultLimit.fillInterval: must be at least 50ms, found 0.010s",
            KEEPS_SERVING,
        ],
        &[],
    );
    assert_eq!(listeners(&t2), ["listener-::-8080"]);
    assert_eq!(vhost_names(route_config(&t2)), ["gloo-system_a"]);

    // An address that is not one is refused the same way.
    let t3 = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &app,
            &gateway(
                "{name: gw, namespace: gloo-system}",
                "bindAddress: nope\nbindPort: 8080\nhttpGateway: {}\n",
            ),
        ]),
    );
    assert_status(
        &t3,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &[
            "spec.bindAddress: \"nope\" is not an IP address",
            KEEPS_SERVING,
        ],
        &[],
    );
    assert_eq!(listeners(&t3), ["listener-::-8080"]);

    // The fix is served.
    let t4 = translate_with(&mut translator, &docs(&[&up(), &app, &gw(8081, "")]));
    assert_no_rejections(&t4);
    assert_eq!(listeners(&t4), ["listener-::-8081"]);

    // A deleted Gateway is forgotten: brought back broken, it has nothing to fall back on.
    let t5 = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &app,
            &gateway(
                "{name: other, namespace: gloo-system}",
                "bindPort: 9090\nhttpGateway: {}\n",
            ),
        ]),
    );
    assert_no_rejections(&t5);
    let t6 = translate_with(&mut translator, &docs(&[&up(), &app, &gw(8081, bad)]));
    let rejected = status(&t6, Kind::Gateway, &gs("gw"));
    assert_eq!(rejected.state, Rejected);
    assert!(
        !rejected.errors.iter().any(|e| e == KEEPS_SERVING),
        "{rejected:?}"
    );
    assert!(t6.proxies.is_empty(), "{:?}", t6.proxies.keys());
}

#[test]
fn rejected_route_table_edit_keeps_the_last_accepted_version() {
    let mut translator = Translator::new();
    let vs_yaml = delegating_vs("/", "{selector: {labels: {app: x}}}");
    let v1 = docs(&[
        &up(),
        &vs_yaml,
        &leaf_rt(
            "{name: rt-a, namespace: gloo-system, labels: {app: x}}",
            &["/a-v1"],
        ),
        &leaf_rt(
            "{name: rt-b, namespace: gloo-system, labels: {app: x}}",
            &["/b-v1"],
        ),
    ]);
    assert_no_rejections(&translate_with(&mut translator, &v1));

    let broken = rt(
        "{name: rt-a, namespace: gloo-system, labels: {app: x}}",
        "routes:\n- matchers: [{prefix: /a-v2, headers: [{name: x, value: '[', regex: true}]}]\n  routeAction: {single: {upstream: {name: up}}}\n",
    );
    let v2 = docs(&[
        &up(),
        &vs_yaml,
        &broken,
        &leaf_rt(
            "{name: rt-b, namespace: gloo-system, labels: {app: x}}",
            &["/b-v2"],
        ),
    ]);
    let t2 = translate_with(&mut translator, &v2);
    assert_status(
        &t2,
        Kind::RouteTable,
        &gs("rt-a"),
        Rejected,
        &["spec.routes[0].matchers[0].headers[0].value: invalid regex \"[\": error: unclosed character class", KEEPS_SERVING],
        &[],
    );
    assert_status(&t2, Kind::RouteTable, &gs("rt-b"), Accepted, &[], &[]);
    assert_eq!(
        paths(vhost_routes(route_config(&t2), "gloo-system_default")),
        ["prefix:/a-v1", "prefix:/b-v2"]
    );
}

#[test]
fn a_route_table_that_was_never_valid_is_not_served() {
    let broken = rt(
        "{name: rt1, namespace: gloo-system}",
        "routes:\n- matchers: [{prefix: /a}]\n",
    );
    let t = translate(&docs(&[
        &up(),
        &delegating_vs("/", "{ref: {name: rt1}}"),
        &broken,
    ]));
    assert_eq!(status(&t, Kind::RouteTable, &gs("rt1")).state, Rejected);
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].delegateAction: RouteTable gloo-system.rt1 was rejected and has no accepted version; the route is dropped"],
    );
}

// ----- incremental translation ---------------------------------------------------------------

fn versions(p: &gloo_core::xds::ProxyResources) -> Vec<(String, String)> {
    let mut out = Vec::new();
    out.extend(
        p.listeners
            .iter()
            .map(|(n, v)| (format!("listener {n}"), v.version.clone())),
    );
    out.extend(
        p.routes
            .iter()
            .map(|(n, v)| (format!("routes {n}"), v.version.clone())),
    );
    out.extend(
        p.clusters
            .iter()
            .map(|(n, v)| (format!("cluster {n}"), v.version.clone())),
    );
    out.extend(
        p.endpoints
            .iter()
            .map(|(n, v)| (format!("endpoints {n}"), v.version.clone())),
    );
    out
}

fn two_listeners(one_prefix: &str) -> String {
    docs(&[
        &up(),
        &simple_vs("one", "one.com", one_prefix),
        &simple_vs("two", "two.com", "/two"),
        &gateway(
            "{name: g1, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway: {virtualServices: [{name: one}]}\n",
        ),
        &gateway(
            "{name: g2, namespace: gloo-system}",
            "bindPort: 8081\nhttpGateway: {virtualServices: [{name: two}]}\n",
        ),
    ])
}

#[test]
fn translating_the_same_snapshot_twice_gives_identical_versions() {
    let mut translator = Translator::new();
    let yaml = two_listeners("/one");
    let first = translate_with(&mut translator, &yaml);
    let second = translate_with(&mut translator, &yaml);
    assert_eq!(versions(proxy(&first)), versions(proxy(&second)));
    assert_eq!(
        translator.virtual_hosts_translated, 0,
        "nothing changed, nothing is re-translated"
    );
    assert_eq!(proxy(&first), proxy(&second));
}

#[test]
fn changing_one_virtual_service_changes_only_its_route_configuration() {
    let mut translator = Translator::new();
    let first = translate_with(&mut translator, &two_listeners("/one"));
    assert_eq!(translator.virtual_hosts_translated, 2);
    let second = translate_with(&mut translator, &two_listeners("/one-changed"));
    assert_no_rejections(&second);
    assert_eq!(translator.virtual_hosts_translated, 1);
    let (a, b) = (proxy(&first), proxy(&second));
    assert_ne!(
        a.routes["listener-::-8080-routes"].version,
        b.routes["listener-::-8080-routes"].version
    );
    assert_eq!(
        a.routes["listener-::-8081-routes"].version,
        b.routes["listener-::-8081-routes"].version
    );
    let unchanged = |p: &gloo_core::xds::ProxyResources| {
        versions(p)
            .into_iter()
            .filter(|(n, _)| n != "routes listener-::-8080-routes")
            .collect::<Vec<_>>()
    };
    assert_eq!(unchanged(a), unchanged(b));
}

#[test]
fn update_endpoints_changes_only_endpoint_versions() {
    let kube = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: svc, namespace: gloo-system}\nspec:\n  kube: {serviceName: svc, serviceNamespace: apps, servicePort: 8080}\n";
    let route = vs(
        "default",
        "routes:\n- routeAction: {single: {upstream: {name: svc}}}\n",
    );
    let mut translator = Translator::new();
    let t = translate_with(&mut translator, &docs(&[kube, &route]));
    assert_no_rejections(&t);
    let before = proxy(&t).clone();
    assert!(
        before.endpoints.contains_key("svc_gloo-system"),
        "{:?}",
        before.endpoints.keys()
    );

    let mut endpoints = Endpoints::new();
    endpoints.insert(
        gs("svc"),
        vec![
            Endpoint::new("10.1.2.3", 8080),
            Endpoint::new("10.1.2.4", 8080),
        ],
    );
    let updated = translator.update_endpoints(endpoints).clone();
    let after = &updated["gateway-proxy"];
    let not_endpoints = |p: &gloo_core::xds::ProxyResources| {
        versions(p)
            .into_iter()
            .filter(|(n, _)| !n.starts_with("endpoints "))
            .collect::<Vec<_>>()
    };
    assert_eq!(not_endpoints(&before), not_endpoints(after));
    assert_ne!(
        before.endpoints["svc_gloo-system"].version,
        after.endpoints["svc_gloo-system"].version
    );
    let cla = after.endpoints["svc_gloo-system"].resource();
    assert_eq!(cla.endpoints[0].lb_endpoints.len(), 2);

    // The next full translation keeps the discovered endpoints.
    let again = translate_with(&mut translator, &docs(&[kube, &route]));
    assert_eq!(
        proxy(&again).endpoints["svc_gloo-system"].version,
        after.endpoints["svc_gloo-system"].version
    );
}

#[test]
fn invalid_rate_limit_and_auth_configs_are_rejected() {
    let t = translate(
        "apiVersion: ratelimit.solo.io/v1alpha1\nkind: RateLimitConfig\nmetadata: {name: rl}\nspec:\n  raw:\n    descriptors:\n    - key: ''\n      rateLimit: {unit: MINUTE, requestsPerUnit: 1}\n---\napiVersion: enterprise.gloo.solo.io/v1\nkind: AuthConfig\nmetadata: {name: ac}\nspec:\n  configs:\n  - name: nothing\n",
    );
    let rl = status(&t, Kind::RateLimitConfig, &gs("rl"));
    assert_eq!(rl.state, Rejected);
    assert!(
        rl.errors[0].starts_with("raw.descriptors[0]"),
        "{:?}",
        rl.errors
    );
    let ac = status(&t, Kind::AuthConfig, &gs("ac"));
    assert_eq!(ac.errors, ["spec.configs[0]: no auth type is set"]);
}

// ----- TLS secrets ---------------------------------------------------------------------------

const TLS_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: gloo-system}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: CERT-PEM\n  tls.key: KEY-PEM\n";

fn ssl_vs(secret: &str) -> String {
    format!("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: secure, namespace: gloo-system}}\nspec:\n  sslConfig:\n    secretRef: {{name: {secret}}}\n  virtualHost:\n    domains: [secure.example.com]\n    routes:\n    - directResponseAction: {{status: 200}}\n")
}

#[test]
fn ssl_virtual_service_serves_its_secret_inline_on_the_ssl_listener() {
    let t = translate(&docs(&[TLS_SECRET, &ssl_vs("tls")]));
    assert_no_rejections(&t);
    let listener = proxy(&t).listeners["listener-::-8443"].resource();
    let chain = &listener.filter_chains[0];
    assert_eq!(
        chain.filter_chain_match.as_ref().unwrap().server_names,
        ["secure.example.com"]
    );
    let json = gloo_core::xds::to_json(listener).unwrap();
    let tls = &json["filterChains"][0]["transportSocket"]["typedConfig"];
    let cert = &tls["commonTlsContext"]["tlsCertificates"][0];
    // inline bytes print as base64 in proto JSON: "CERT-PEM" -> "Q0VSVC1QRU0="
    assert_eq!(cert["certificateChain"]["inlineBytes"], "Q0VSVC1QRU0=");
    assert_eq!(cert["privateKey"]["inlineBytes"], "S0VZLVBFTQ==");
    // The plain listener does not serve the SSL virtual service.
    assert!(vhost_names(route_config_of(proxy(&t), "listener-::-8080-routes")).is_empty());
}

#[test]
fn ssl_virtual_service_with_a_missing_secret_is_rejected() {
    let t = translate(&ssl_vs("nope"));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("secure"),
        Rejected,
        &["spec.sslConfig.secretRef: Secret gloo-system.nope not found"],
        &[],
    );
    assert!(!proxy(&t).listeners.contains_key("listener-::-8443"));
}

#[test]
fn upstream_tls_secret_must_exist_and_hold_tls_material() {
    let upstream = |secret: &str| {
        format!("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: up, namespace: gloo-system}}\nspec:\n  static: {{hosts: [{{addr: 127.0.0.1, port: 443}}]}}\n  sslConfig: {{secretRef: {{name: {secret}}}}}\n")
    };
    let t = translate(&upstream("missing"));
    assert_status(
        &t,
        Kind::Upstream,
        &gs("up"),
        Rejected,
        &["spec.sslConfig.secretRef: Secret gloo-system.missing not found"],
        &[],
    );
    let empty = "apiVersion: v1\nkind: Secret\nmetadata: {name: empty, namespace: gloo-system}\nstringData: {other: x}\n";
    let t = translate(&docs(&[empty, &upstream("empty")]));
    assert_eq!(
        status(&t, Kind::Upstream, &gs("up")).errors,
        ["spec.sslConfig.secretRef: Secret gloo-system.empty holds no TLS material (tls.crt and tls.key, or ca.crt)"]
    );
}

#[test]
fn a_changed_secret_rebuilds_the_cluster_that_uses_it() {
    let ca = |pem: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: ca, namespace: gloo-system}}\nstringData: {{ca.crt: {pem}}}\n")
    };
    let rest = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: up, namespace: gloo-system}\nspec:\n  static: {hosts: [{addr: 127.0.0.1, port: 443}]}\n  sslConfig: {secretRef: {name: ca}}\n---\n".to_string()
        + &vs("default", "routes:\n- routeAction: {single: {upstream: {name: up}}}\n");
    let mut translator = Translator::new();
    let first = translate_with(&mut translator, &docs(&[&ca("ONE"), &rest]));
    let second = translate_with(&mut translator, &docs(&[&ca("TWO"), &rest]));
    let version =
        |t: &gloo_core::translate::Translation| proxy(t).clusters["up_gloo-system"].version.clone();
    assert_ne!(version(&first), version(&second));
}

// ----- gateway types -------------------------------------------------------------------------

#[test]
fn hybrid_gateway_matches_clients_by_address_with_a_route_config_per_http_chain() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/envoy-gateways/gateways.yaml"
    ))
    .unwrap();
    let t = translate(&text);
    assert_no_rejections(&t);
    let listener = proxy(&t).listeners["listener-::-8443"].resource();
    assert_eq!(listener.filter_chains.len(), 2);
    let internal = &listener.filter_chains[0];
    let ranges = &internal
        .filter_chain_match
        .as_ref()
        .unwrap()
        .source_prefix_ranges;
    assert_eq!(ranges[0].address_prefix, "10.0.0.0");
    assert_eq!(ranges[0].prefix_len.as_ref().unwrap().value, 8);
    assert!(internal.transport_socket.is_none());
    // The TCP chain passes TLS through: its matcher lends it its SNI domains and terminates
    // nothing (as in Gloo), and the listener reads the SNI.
    let tls = &listener.filter_chains[1];
    assert_eq!(
        tls.filter_chain_match.as_ref().unwrap().server_names,
        ["secure.example.com"]
    );
    assert!(tls.transport_socket.is_none());
    assert_eq!(
        listener
            .listener_filters
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["envoy.filters.listener.tls_inspector"]
    );
    assert_eq!(
        vhost_names(route_config_of(proxy(&t), "listener-::-8443-routes-0")),
        ["gloo-system_web"]
    );
    // The TCP gateway: one chain per host, the SNI hosts matched by name, the one with a
    // certificate terminating TLS.
    let tcp = proxy(&t).listeners["listener-0.0.0.0-9000"].resource();
    assert_eq!(tcp.filter_chains.len(), 3);
    let server_names = |i: usize| {
        tcp.filter_chains[i]
            .filter_chain_match
            .as_ref()
            .map(|m| m.server_names.clone())
    };
    assert_eq!(server_names(0), Some(vec!["db.example.com".to_string()]));
    assert!(tcp.filter_chains[0].transport_socket.is_none());
    assert_eq!(
        server_names(1),
        Some(vec!["secure.example.com".to_string()])
    );
    assert!(tcp.filter_chains[1].transport_socket.is_some());
    assert_eq!(server_names(2), None);
    assert!(tcp.filter_chains[2].transport_socket.is_none());
}

#[test]
fn hybrid_gateway_with_an_unreadable_certificate_drops_only_that_chain() {
    let text = "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: hybrid, namespace: gloo-system}\nspec:\n  bindPort: 8443\n  hybridGateway:\n    matchedGateways:\n    - matcher: {sslConfig: {secretRef: {name: nope}}}\n      httpGateway: {}\n    - matcher: {sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]}\n      httpGateway: {}\n";
    let t = translate(&docs(&[
        text,
        &vs(
            "default",
            "routes:\n- directResponseAction: {status: 200}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("hybrid"),
        Rejected,
        &["spec.hybridGateway.matchedGateways[0].matcher.sslConfig.secretRef: Secret gloo-system.nope not found"],
        &[],
    );
    let listener = proxy(&t).listeners["listener-::-8443"].resource();
    assert_eq!(listener.filter_chains.len(), 1);
    assert_eq!(
        vhost_names(route_config_of(proxy(&t), "listener-::-8443-routes-1")),
        ["gloo-system_default"]
    );
}

#[test]
fn a_matched_gateway_must_be_http_or_tcp() {
    let text = "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: hybrid, namespace: gloo-system}\nspec:\n  bindPort: 8443\n  hybridGateway:\n    matchedGateways:\n    - matcher: {}\n";
    let t = translate(text);
    assert_eq!(
        status(&t, Kind::Gateway, &gs("hybrid")).errors,
        ["spec.hybridGateway.matchedGateways[0]: set exactly one of httpGateway, tcpGateway"]
    );
}

// ----- Settings: invalidConfigPolicy ---------------------------------------------------------

const REPLACE_INVALID: &str = "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  gloo:\n    invalidConfigPolicy:\n      replaceInvalidRoutes: true\n      invalidRouteResponseCode: 418\n      invalidRouteResponseBody: fix me\n";

#[test]
fn invalid_config_policy_answers_routes_to_missing_upstreams() {
    let t = translate(&docs(&[
        REPLACE_INVALID,
        &vs(
            "default",
            "routes:\n- routeAction: {single: {upstream: {name: nope}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.single.upstream: Upstream gloo-system.nope not found; the route answers 418 (invalidConfigPolicy)"],
    );
    let route = &vhost_routes(route_config(&t), "gloo-system_default")[0];
    let Some(envoy_types::pb::envoy::config::route::v3::route::Action::DirectResponse(d)) =
        &route.action
    else {
        panic!("expected a direct response, got {:?}", route.action)
    };
    assert_eq!(d.status, 418);
    let body = d.body.as_ref().and_then(|b| b.specifier.clone());
    assert_eq!(
        body,
        Some(
            envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineString(
                "fix me".into()
            )
        )
    );
}

#[test]
fn invalid_config_policy_replaces_a_delegation_with_nothing_to_serve() {
    let t = translate(&docs(&[
        REPLACE_INVALID,
        &vs(
            "default",
            "routes:\n- matchers: [{prefix: /team}]\n  delegateAction: {ref: {name: missing}}\n- directResponseAction: {status: 200}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].delegateAction: RouteTable gloo-system.missing not found; the route answers 418 (invalidConfigPolicy)"],
    );
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    assert_eq!(paths(routes), ["prefix:/team", "prefix:/"]);
    assert!(matches!(
        routes[0].action,
        Some(envoy_types::pb::envoy::config::route::v3::route::Action::DirectResponse(ref d)) if d.status == 418
    ));
}

#[test]
fn regex_repetitions_re2_refuses_are_rejected() {
    let t = translate(&vs(
        "default",
        "routes:\n- matchers: [{regex: '/a{1001}'}]\n  directResponseAction: {status: 200}\n",
    ));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.routes[0].matchers[0].regex: invalid regex \"/a{1001}\": repetition counts above 1000 are not allowed (RE2)"],
        &[],
    );
}

// ----- Upstream groups -----------------------------------------------------------------------

/// An UpstreamGroup `gloo-system.<name>` sending to `up`, with `options` (a YAML flow mapping)
/// as its destination's options.
fn upstream_group(name: &str, options: &str) -> String {
    resource(
        "gloo.solo.io/v1",
        "UpstreamGroup",
        &format!("{{name: {name}, namespace: gloo-system}}"),
        &format!(
            "destinations:\n- weight: 1\n  destination: {{upstream: {{name: up, namespace: gloo-system}}}}\n  options: {options}\n"
        ),
    )
}

/// A VirtualService whose route `/bad` goes to UpstreamGroup `bad` and `/good` to `good`.
const GROUPED_VS: &str = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /bad}]\n      routeAction: {upstreamGroup: {name: bad}}\n    - matchers: [{prefix: /good}]\n      routeAction: {upstreamGroup: {name: good}}\n";

const BAD_GROUP_HEADERS: &str =
    "{headerManipulation: {requestHeadersToAdd: [{header: {key: ':path', value: /evil}}]}}";

/// A rejected UpstreamGroup is not used, as Gloo uses no resource with errors (and as a
/// rejected Upstream gets no cluster): a route to it has no destination, so Envoy answers 503
/// through the missing cluster, as for a route to a missing group, and the VirtualService
/// says why with a warning. Nothing of the group (its invalid header manipulation) reaches
/// Envoy; routes to valid groups are served; once fixed, the group serves again.
#[test]
fn a_rejected_upstream_group_is_not_used_and_routes_to_it_answer_503() {
    let good = upstream_group(
        "good",
        "{headerManipulation: {requestHeadersToAdd: [{header: {key: x-good, value: '1'}}]}}",
    );
    let mut translator = Translator::new();
    let t = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &upstream_group("bad", BAD_GROUP_HEADERS),
            &good,
            GROUPED_VS,
        ]),
    );
    assert_status(
        &t,
        Kind::UpstreamGroup,
        &gs("bad"),
        Rejected,
        &["spec.destinations[0].options.headerManipulation.requestHeadersToAdd[0].header.key: :-prefixed or host headers may not be modified, found \":path\""],
        &[],
    );
    assert_status(&t, Kind::UpstreamGroup, &gs("good"), Accepted, &[], &[]);
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup gloo-system.bad is rejected; the route answers 503 until it is fixed"],
    );
    let vhost = vhost_json(&t, "default");
    assert_eq!(
        vhost["routes"][0]["route"],
        serde_json::json!({"cluster": "gloo-missing-destination"}),
        "{vhost:#}"
    );
    assert_eq!(
        vhost["routes"][1]["route"]["weightedClusters"]["clusters"],
        serde_json::json!([{
            "name": "up_gloo-system",
            "weight": 1,
            "requestHeadersToAdd": [{"header": {"key": "x-good", "value": "1"}}],
        }]),
        "{vhost:#}"
    );
    let json = proxy_json(&t).to_string();
    assert!(!json.contains("/evil"), "{json}");
    assert!(proxy(&t).clusters.contains_key("up_gloo-system"));

    // Fixed: the same translator serves the group again, without the warning.
    let t = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &upstream_group(
                "bad",
                "{headerManipulation: {requestHeadersToAdd: [{header: {key: x-fixed, value: '1'}}]}}",
            ),
            &good,
            GROUPED_VS,
        ]),
    );
    assert_no_rejections(&t);
    assert_status(&t, Kind::VirtualService, &gs("default"), Accepted, &[], &[]);
    let vhost = vhost_json(&t, "default");
    assert_eq!(
        vhost["routes"][0]["route"]["weightedClusters"]["clusters"][0]["requestHeadersToAdd"][0]
            ["header"],
        serde_json::json!({"key": "x-fixed", "value": "1"}),
        "{vhost:#}"
    );
}

/// With `invalidConfigPolicy.replaceInvalidRoutes`, a route to a rejected UpstreamGroup
/// answers the configured response, as a route to a missing destination does.
#[test]
fn invalid_config_policy_answers_routes_to_rejected_upstream_groups() {
    let t = translate(&docs(&[
        REPLACE_INVALID,
        &up(),
        &upstream_group("bad", BAD_GROUP_HEADERS),
        &upstream_group("good", "{}"),
        GROUPED_VS,
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.upstreamGroup: UpstreamGroup gloo-system.bad is rejected; the route answers 418 (invalidConfigPolicy)"],
    );
    let vhost = vhost_json(&t, "default");
    assert_eq!(
        vhost["routes"][0]["directResponse"]["status"], 418,
        "{vhost:#}"
    );
    assert!(vhost["routes"][0].get("route").is_none(), "{vhost:#}");
    assert!(!proxy_json(&t).to_string().contains("/evil"));
}

// ----- Header secrets ------------------------------------------------------------------------

fn header_secret(value: &str) -> String {
    format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: hdrs, namespace: gloo-system}}\ntype: gloo.solo.io/header\nstringData:\n  x-api-key: {value}\n  x-team: payments\n")
}

const HEADER_SECRET_VS: &str = "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      directResponseAction: {status: 200}\n      options:\n        headerManipulation:\n          requestHeadersToAdd:\n          - headerSecretRef: {name: hdrs, namespace: gloo-system}\n            append: false\n";

fn added_headers(t: &gloo_core::translate::Translation) -> Vec<(String, String, i32)> {
    let rc = route_config_of(proxy(t), "listener-::-8080-routes");
    rc.virtual_hosts[0].routes[0]
        .request_headers_to_add
        .iter()
        .map(|o| {
            let h = o.header.as_ref().unwrap();
            (h.key.clone(), h.value.clone(), o.append_action)
        })
        .collect()
}

#[test]
fn header_secret_refs_add_every_key_of_the_secret() {
    let mut translator = Translator::new();
    let t = translate_with(
        &mut translator,
        &docs(&[&header_secret("k1"), HEADER_SECRET_VS]),
    );
    assert_no_rejections(&t);
    let overwrite = envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd as i32;
    assert_eq!(
        added_headers(&t),
        [
            ("x-api-key".to_string(), "k1".to_string(), overwrite),
            ("x-team".to_string(), "payments".to_string(), overwrite),
        ]
    );
    // A rotated Secret reaches the route even though the VirtualService did not change.
    let t = translate_with(
        &mut translator,
        &docs(&[&header_secret("k2"), HEADER_SECRET_VS]),
    );
    assert_eq!(added_headers(&t)[0].1, "k2");
}

#[test]
fn a_header_secret_ref_to_a_missing_secret_rejects_the_virtual_service() {
    let t = translate(HEADER_SECRET_VS);
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.routes[0].options.headerManipulation.requestHeadersToAdd[0].headerSecretRef: Secret gloo-system.hdrs not found"],
        &[],
    );
}

/// Option resources get Gloo's headers plugin check too: a VirtualHostOption or RouteOption
/// whose `headerSecretRef` names a Secret that is not there is rejected (the error on it, with
/// its field path) and not applied, so the VirtualService delegating to it warns and is served
/// without its headers. A reference without a namespace is to the option resource's own
/// namespace, not the VirtualService's; once the Secrets exist, the options apply with their
/// headers.
#[test]
fn header_secret_refs_of_option_resources_need_their_secrets() {
    let secret = |namespace: &str, value: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: hdrs, namespace: {namespace}}}\ntype: gloo.solo.io/header\nstringData: {{x-api-key: {value}}}\n")
    };
    let host_option = resource(
        "gateway.solo.io/v1",
        "VirtualHostOption",
        "{name: vho, namespace: gloo-system}",
        "options: {headerManipulation: {requestHeadersToAdd: [{header: {key: x-literal, value: a}}, {headerSecretRef: {name: missing, namespace: gloo-system}}]}}",
    );
    let route_option = resource(
        "gateway.solo.io/v1",
        "RouteOption",
        "{name: ro, namespace: team}",
        "options: {headerManipulation: {requestHeadersToAdd: [{headerSecretRef: {name: hdrs}}]}}",
    );
    let users = vs(
        "users",
        "
        domains: ['*']
        optionsConfigRefs: {delegateOptions: [{name: vho}]}
        routes:
        - matchers: [{prefix: /}]
          optionsConfigRefs: {delegateOptions: [{name: ro, namespace: team}]}
          directResponseAction: {status: 200}
        ",
    );
    let mut translator = Translator::new();
    // A Secret `hdrs` beside the VirtualService is not the RouteOption's.
    let t = translate_with(
        &mut translator,
        &docs(&[
            &secret("gloo-system", "vs-namespace"),
            &host_option,
            &route_option,
            &users,
        ]),
    );
    assert_status(
        &t,
        Kind::VirtualHostOption,
        &gs("vho"),
        Rejected,
        &["spec.options.headerManipulation.requestHeadersToAdd[1].headerSecretRef: Secret gloo-system.missing not found"],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteOption,
        &ResourceRef::new("team", "ro"),
        Rejected,
        &["spec.options.headerManipulation.requestHeadersToAdd[0].headerSecretRef: Secret team.hdrs not found"],
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
            "spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption team.ro is rejected; its options are not applied",
        ],
    );
    let vhost = vhost_json(&t, "users");
    assert!(vhost.get("requestHeadersToAdd").is_none(), "{vhost:#}");
    assert!(
        vhost["routes"][0].get("requestHeadersToAdd").is_none(),
        "{vhost:#}"
    );

    // The Secrets appear: the same translator applies both options, the RouteOption's headers
    // read from its own namespace's Secret.
    let missing = "apiVersion: v1\nkind: Secret\nmetadata: {name: missing, namespace: gloo-system}\ntype: gloo.solo.io/header\nstringData: {x-host: h}\n";
    let t = translate_with(
        &mut translator,
        &docs(&[
            &secret("gloo-system", "vs-namespace"),
            &secret("team", "team-namespace"),
            missing,
            &host_option,
            &route_option,
            &users,
        ]),
    );
    assert_no_rejections(&t);
    assert_status(&t, Kind::VirtualService, &gs("users"), Accepted, &[], &[]);
    let vhost = vhost_json(&t, "users");
    let headers = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["requestHeadersToAdd"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (
                    h["header"]["key"].as_str().unwrap_or_default().to_string(),
                    h["header"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        headers(&vhost),
        [
            ("x-literal".to_string(), "a".to_string()),
            ("x-host".to_string(), "h".to_string())
        ],
        "{vhost:#}"
    );
    assert_eq!(
        headers(&vhost["routes"][0]),
        [("x-api-key".to_string(), "team-namespace".to_string())],
        "{vhost:#}"
    );
}

// ----- lbHash --------------------------------------------------------------------------------

#[test]
fn lb_hash_policies_become_envoy_hash_policies_in_order() {
    use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /}]
              options:
                lbHash:
                  hashPolicies:
                  - {header: x-user, terminal: true}
                  - {cookie: {name: session, ttl: 60s, path: /app}}
                  - {sourceIp: true}
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_routes(route_config(&t), "gloo-system_default");
    let policies = &route_action(&routes[0]).hash_policy;
    assert_eq!(policies.len(), 3);
    assert!(policies[0].terminal);
    match &policies[0].policy_specifier {
        Some(PolicySpecifier::Header(h)) => assert_eq!(h.header_name, "x-user"),
        other => panic!("expected a header policy, got {other:?}"),
    }
    match &policies[1].policy_specifier {
        Some(PolicySpecifier::Cookie(c)) => {
            assert_eq!(c.name, "session");
            assert_eq!(c.path, "/app");
            assert_eq!(c.ttl.as_ref().map(|d| d.seconds), Some(60));
        }
        other => panic!("expected a cookie policy, got {other:?}"),
    }
    assert!(!policies[1].terminal);
    assert!(matches!(
        &policies[2].policy_specifier,
        Some(PolicySpecifier::ConnectionProperties(c)) if c.source_ip
    ));
}

#[test]
fn lb_hash_policy_without_exactly_one_key_is_rejected() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "
            routes:
            - matchers: [{prefix: /}]
              options:
                lbHash:
                  hashPolicies:
                  - {header: x-user, sourceIp: true}
                  - {terminal: true}
                  - {cookie: {ttl: 5s}}
              routeAction: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &vs_key("default"),
        Rejected,
        &[
            "spec.virtualHost.routes[0].options.lbHash.hashPolicies[0]: only one of header, sourceIp may be set, found both (oneof `keyType`)",
            "spec.virtualHost.routes[0].options.lbHash.hashPolicies[1]: no key: set one of header, cookie, sourceIp",
            "spec.virtualHost.routes[0].options.lbHash.hashPolicies[2].cookie.name: required",
        ],
        &[],
    );
}
