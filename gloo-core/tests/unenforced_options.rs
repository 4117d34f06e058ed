//! Options gloo parses but does not enforce yet (WAF, DLP, post-routing transformations,
//! ...) never leave a route served open: the resource that sets them is
//! Rejected, and a route or virtual host that takes them from an option resource answers 503
//! (or no route) instead of being served without them. A Gateway's options that guard nothing
//! and are not applied yet, and an Upstream's, are never dropped silently either: each is a
//! warning on its status.

mod common;

use common::*;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use gloo_core::model::Kind;

const REFUSED: &str =
    "gloo does not enforce this option yet, so it is rejected rather than served without it";

fn route_to_up(extra: &str) -> String {
    format!("- matchers: [{{prefix: /}}]\n  {extra}routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}\n")
}

#[test]
fn a_virtual_service_setting_an_unenforced_option_is_rejected_and_not_served() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "dlp",
            &format!(
                "domains: [dlp.example]\noptions: {{dlp: {{actions: []}}}}\nroutes:\n{}",
                route_to_up("")
            ),
        ),
        &vs(
            "auth",
            &format!(
                "domains: [auth.example]\nroutes:\n{}",
                route_to_up("options: {waf: {}, dlp: {actions: []}}\n  ")
            ),
        ),
        // Switching a filter off enforces nothing and is served.
        &vs(
            "off",
            &format!(
                "domains: [off.example]\nroutes:\n{}",
                route_to_up("options: {extauth: {disable: true}, waf: {disabled: true}, jwt: {disable: true}}\n  ")
            ),
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("dlp"),
        Rejected,
        &[&format!("spec.virtualHost.options.dlp: {REFUSED}")],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("auth"),
        Rejected,
        // The WAF is enforced (and `waf: {}` puts no rules in force): only DLP is refused.
        &[&format!(
            "spec.virtualHost.routes[0].options.dlp: {REFUSED}"
        )],
        &[],
    );
    assert_status(&t, Kind::VirtualService, &gs("off"), Accepted, &[], &[]);
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_off"]);
}

#[test]
fn option_resources_with_unenforced_options_refuse_the_routes_that_use_them() {
    let t = translate(&docs(&[
        &up(),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: ro, namespace: gloo-system}",
            "options: {stagedTransformations: {postRouting: {requestTransforms: []}}}",
        ),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: vho, namespace: gloo-system}",
            "options: {dlp: {actions: []}}",
        ),
        // The refused route answers 503 itself, so `/admin` cannot fall through to `/`.
        &vs(
            "routes",
            "
            domains: [routes.example]
            routes:
            - matchers: [{prefix: /admin}]
              optionsConfigRefs: {delegateOptions: [{name: ro}]}
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            - matchers: [{prefix: /}]
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            ",
        ),
        &vs(
            "host",
            &format!(
                "domains: [host.example]\noptionsConfigRefs: {{delegateOptions: [{{name: vho}}]}}\nroutes:\n{}",
                route_to_up("")
            ),
        ),
    ]));
    assert_status(
        &t,
        Kind::RouteOption,
        &gs("ro"),
        Rejected,
        &[&format!(
            "spec.options.stagedTransformations.postRouting: {REFUSED}"
        )],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualHostOption,
        &gs("vho"),
        Rejected,
        &[&format!("spec.options.dlp: {REFUSED}")],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("routes"),
        Rejected,
        &["spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.ro sets options gloo does not enforce yet; the route answers 503 rather than being served without them"],
        &[],
    );
    let routes = vhost_routes(route_config(&t), "gloo-system_routes");
    assert_eq!(paths(routes), ["prefix:/admin", "prefix:/"]);
    match &routes[0].action {
        Some(Action::DirectResponse(d)) => assert_eq!(d.status, 503),
        other => panic!("expected a 503 direct response, got {other:?}"),
    }
    assert_eq!(cluster_of(&routes[1]), "up_gloo-system");

    assert_status(
        &t,
        Kind::VirtualService,
        &gs("host"),
        Rejected,
        &["spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.vho sets options gloo does not enforce yet; the virtual host serves no routes rather than serving them without"],
        &[],
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_host").is_empty());
}

#[test]
fn a_gateway_whose_listener_wide_waf_cannot_be_loaded_is_rejected() {
    // The listener-wide WAF is enforced now (tests/waf.rs); rules gloo cannot load (from a
    // ConfigMap it cannot find) reject the Gateway rather than serving the listener without
    // them.
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway: {options: {waf: {configMapRuleSets: [{configMapRef: {name: rules}}]}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &["spec.httpGateway.options.waf.configMapRuleSets[0].configMapRef: ConfigMap \"rules\" needs its namespace (Gloo looks a reference without one up in the namespace \"\")"],
        &[],
    );
    assert!(t.proxies.is_empty());
}

fn gateway_with(spec: &str) -> String {
    gateway("{name: gateway-proxy, namespace: gloo-system}", spec)
}

/// A Gateway option that guards every route's traffic and that gloo does not enforce (CSRF,
/// DLP, external processing, Wasm, connection limits) rejects the Gateway; one that guards
/// nothing and is not applied yet (proxy latency, listener-level access logs, ...) is a
/// warning on an Accepted-with-warnings Gateway, which is served.
#[test]
fn gateway_options_are_rejected_when_they_guard_traffic_and_warned_about_otherwise() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway:\n  options:\n    csrf: {filterEnabled: {defaultValue: {numerator: 100}}}\n    connectionLimit: {maxActiveConnections: 10}\n",
        ),
    ]));
    let s = status(&t, Kind::Gateway, &gs("gateway-proxy"));
    assert_eq!(s.state, Rejected, "{}", t.reports.to_text());
    assert_eq!(
        s.errors,
        [
            format!("spec.httpGateway.options.csrf: {REFUSED}"),
            format!("spec.httpGateway.options.connectionLimit: {REFUSED}"),
        ]
    );

    let tcp = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'\nbindPort: 9000\ntcpGateway:\n  options:\n    connectionLimit: {maxActiveConnections: 10}\n  tcpHosts:\n  - name: one\n    destination: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
    ]));
    let s = status(&tcp, Kind::Gateway, &gs("gateway-proxy"));
    assert_eq!(
        s.errors,
        [format!(
            "spec.tcpGateway.options.connectionLimit: {REFUSED}"
        )],
        "{}",
        tcp.reports.to_text()
    );

    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'\nbindPort: 8080\noptions:\n  listenerAccessLoggingService: {accessLog: [{fileSink: {path: /dev/stdout, stringFormat: ''}}]}\nhttpGateway:\n  options:\n    grpcWeb: {disable: true}\n    proxyLatency: {request: FIRST_INCOMING_FIRST_OUTGOING}\n    httpConnectionManagerSettings:\n      tracing: {verbose: true}\n      acceptHttp10: true\n",
        ),
        &vs("default", "routes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}"),
    ]));
    let served = " gloo does not apply this option yet; the gateway is served without it";
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Warning,
        &[],
        &[
            &format!("spec.options.listenerAccessLoggingService:{served}"),
            &format!("spec.httpGateway.options.proxyLatency:{served}"),
        ],
    );
    // `grpcWeb` is applied, so not warned about: the listener goes without the gRPC-Web filter;
    // nor are the connection manager settings, every one of which is applied.
    assert!(
        !filter_names(&t)
            .iter()
            .any(|f| f == "envoy.filters.http.grpc_web"),
        "{:?}",
        filter_names(&t)
    );
    assert!(
        proxy_json(&t)["listeners"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "a gateway with warnings is served"
    );
}

/// An Upstream's fields gloo does not apply yet are warnings on its status, and the upstream
/// is served.
#[test]
fn upstream_fields_not_applied_are_warnings() {
    let t = translate(&docs(&[
        "apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: up, namespace: gloo-system}
spec:
  static:
    hosts: [{addr: 127.0.0.1, port: 8080}]
  httpProxyHostname: proxy.internal:3128
  disableIstioAutoMtls: true
",
        &vs("default", "routes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}"),
    ]));
    let served = " gloo does not apply this option yet; the upstream is served without it";
    assert_status(
        &t,
        Kind::Upstream,
        &gs("up"),
        Warning,
        &[],
        &[
            &format!("spec.httpProxyHostname:{served}"),
            &format!("spec.disableIstioAutoMtls:{served}"),
        ],
    );
    assert!(proxy(&t).clusters.contains_key("up_gloo-system"), "served");
}
