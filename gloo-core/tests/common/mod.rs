//! Shared helpers for gloo-core's integration tests.
#![allow(dead_code, unused_imports)]

use envoy_types::pb::envoy::config::route::v3::{
    route, route_action, route_match, Route, RouteAction, RouteConfiguration,
};
use gloo_core::model::{Kind, ResourceRef};
use gloo_core::source::{ConfigSource, MemorySource};
use gloo_core::status::{ResourceStatus, State};
use gloo_core::translate::{Translation, Translator};
use gloo_core::xds::ProxyResources;

/// The source name statuses and origins carry.
pub const SOURCE: &str = "test";

/// Translates `yaml` with a fresh translator.
pub fn translate(yaml: &str) -> Translation {
    Translator::new().translate(&snapshot(yaml))
}

/// Parses `yaml` into a source snapshot.
pub fn snapshot(yaml: &str) -> gloo_core::source::SourceSnapshot {
    let source = MemorySource::new(SOURCE);
    source.set_yaml(yaml);
    let snapshot = source.subscribe().borrow().as_ref().clone();
    snapshot
}

/// Translates `yaml` with an existing translator (for last-known-good and incremental tests).
pub fn translate_with(translator: &mut Translator, yaml: &str) -> Translation {
    translator.translate(&snapshot(yaml))
}

/// `namespace.name` reference in gloo-system.
pub fn gs(name: &str) -> ResourceRef {
    ResourceRef::new("gloo-system", name)
}

/// The status of a resource; panics with every report when it has none.
pub fn status<'a>(t: &'a Translation, kind: Kind, reference: &ResourceRef) -> &'a ResourceStatus {
    t.reports
        .get(kind, reference)
        .unwrap_or_else(|| panic!("no status for {kind} {reference}:\n{}", t.reports.to_text()))
}

/// Asserts a resource's exact state, errors and warnings.
#[track_caller]
pub fn assert_status(
    t: &Translation,
    kind: Kind,
    reference: &ResourceRef,
    state: State,
    errors: &[&str],
    warnings: &[&str],
) {
    let s = status(t, kind, reference);
    let report = t.reports.to_text();
    assert_eq!(s.state, state, "state of {kind} {reference}:\n{report}");
    assert_eq!(s.errors, errors, "errors of {kind} {reference}:\n{report}");
    assert_eq!(
        s.warnings, warnings,
        "warnings of {kind} {reference}:\n{report}"
    );
}

/// Asserts there is no Rejected status and no load error.
#[track_caller]
pub fn assert_no_rejections(t: &Translation) {
    assert!(
        !t.reports.has_rejections(),
        "unexpected rejections:\n{}",
        t.reports.to_text()
    );
}

/// The `gateway-proxy` proxy.
pub fn proxy(t: &Translation) -> &ProxyResources {
    proxy_named(t, "gateway-proxy")
}

/// A proxy by name; panics listing the proxies there are.
pub fn proxy_named<'a>(t: &'a Translation, name: &str) -> &'a ProxyResources {
    t.proxies.get(name).unwrap_or_else(|| {
        panic!(
            "no proxy {name}; have {:?}",
            t.proxies.keys().collect::<Vec<_>>()
        )
    })
}

/// The route configuration of the default HTTP listener (`listener-::-8080-routes`).
pub fn route_config(t: &Translation) -> &RouteConfiguration {
    route_config_of(proxy(t), "listener-::-8080-routes")
}

/// A route configuration by name.
pub fn route_config_of<'a>(p: &'a ProxyResources, name: &str) -> &'a RouteConfiguration {
    p.routes
        .get(name)
        .unwrap_or_else(|| {
            panic!(
                "no route config {name}; have {:?}",
                p.routes.keys().collect::<Vec<_>>()
            )
        })
        .resource()
}

/// The Envoy routes of virtual host `vh` (e.g. `gloo-system_default`).
pub fn vhost_routes<'a>(rc: &'a RouteConfiguration, vh: &str) -> &'a [Route] {
    &rc.virtual_hosts
        .iter()
        .find(|v| v.name == vh)
        .unwrap_or_else(|| {
            panic!(
                "no virtual host {vh}; have {:?}",
                rc.virtual_hosts.iter().map(|v| &v.name).collect::<Vec<_>>()
            )
        })
        .routes
}

/// Names of the virtual hosts of a route configuration.
pub fn vhost_names(rc: &RouteConfiguration) -> Vec<String> {
    rc.virtual_hosts.iter().map(|v| v.name.clone()).collect()
}

/// A route's path matcher as text: `prefix:/a`, `path:/a`, `regex:...`.
pub fn path_of(r: &Route) -> String {
    match r.r#match.as_ref().and_then(|m| m.path_specifier.as_ref()) {
        Some(route_match::PathSpecifier::Prefix(p)) => format!("prefix:{p}"),
        Some(route_match::PathSpecifier::Path(p)) => format!("path:{p}"),
        Some(route_match::PathSpecifier::SafeRegex(r)) => format!("regex:{}", r.regex),
        other => format!("{other:?}"),
    }
}

/// The paths of a list of routes.
pub fn paths(routes: &[Route]) -> Vec<String> {
    routes.iter().map(path_of).collect()
}

/// A route's RouteAction; panics if it has another action.
pub fn route_action(r: &Route) -> &RouteAction {
    match &r.action {
        Some(route::Action::Route(a)) => a,
        other => panic!("route {} has no route action: {other:?}", r.name),
    }
}

/// The single cluster a route sends to.
pub fn cluster_of(r: &Route) -> &str {
    match &route_action(r).cluster_specifier {
        Some(route_action::ClusterSpecifier::Cluster(c)) => c,
        other => panic!("route {} has no single cluster: {other:?}", r.name),
    }
}

/// Pretty JSON of a proxy's resources.
pub fn pretty_json(p: &ProxyResources) -> String {
    let mut s = serde_json::to_string_pretty(&p.to_json().expect("to_json")).expect("pretty");
    s.push('\n');
    s
}

/// Reads every `*.yaml` under a directory (sorted), concatenated as one multi-document text.
pub fn read_yaml_dir(dir: &std::path::Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// An upstream with one static IP host.
pub fn static_upstream(name: &str, port: u32) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 10.0.0.1, port: {port}}}]\n"
    )
}

/// Re-exported state for brevity.
pub use gloo_core::status::State::{Accepted, Rejected, Warning};

/// Removes the common leading indentation of `text` (blank lines ignored) and indents every
/// line by `by` spaces.
pub fn reindent(text: &str, by: usize) -> String {
    let lines: Vec<&str> = text.lines().skip_while(|l| l.trim().is_empty()).collect();
    let common = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let pad = " ".repeat(by);
    let mut out = String::new();
    for l in lines {
        if l.trim().is_empty() {
            out.push('\n');
        } else {
            out.push_str(&pad);
            out.push_str(&l[common..]);
            out.push('\n');
        }
    }
    out
}

/// One resource document: `metadata` is a YAML flow map, `spec` a block (any indentation).
pub fn resource(api: &str, kind: &str, metadata: &str, spec: &str) -> String {
    format!(
        "apiVersion: {api}\nkind: {kind}\nmetadata: {metadata}\nspec:\n{}",
        reindent(spec, 2)
    )
}

/// A VirtualService `gloo-system.<name>` whose `spec.virtualHost` is `vhost`.
pub fn vs(name: &str, vhost: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  virtualHost:\n{}",
        reindent(vhost, 4)
    )
}

/// A RouteTable with the given metadata (flow map) and spec.
pub fn rt(metadata: &str, spec: &str) -> String {
    resource("gateway.solo.io/v1", "RouteTable", metadata, spec)
}

/// A Gateway with the given metadata (flow map) and spec.
pub fn gateway(metadata: &str, spec: &str) -> String {
    resource("gateway.solo.io/v1", "Gateway", metadata, spec)
}

/// Joins documents into one multi-document YAML text.
pub fn docs(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            if p.ends_with('\n') {
                p.to_string()
            } else {
                format!("{p}\n")
            }
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The static Upstream `gloo-system.up` on 127.0.0.1:8080 most tests route to.
pub fn up() -> String {
    static_upstream("up", 8080)
}

/// The default proxy's resources as proto3 JSON.
pub fn proxy_json(t: &Translation) -> serde_json::Value {
    proxy(t).to_json().expect("json")
}

/// The HTTP filters of the first filter chain of the listener on 8080.
pub fn http_filters(t: &Translation) -> Vec<serde_json::Value> {
    let json = proxy_json(t);
    let listener = json["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "listener-::-8080")
        .cloned()
        .expect("listener on 8080");
    listener["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"]
        .as_array()
        .cloned()
        .unwrap()
}

/// Gloo's default gRPC-Web filter (on every HTTP listener unless disabled), as JSON.
pub fn grpc_web_json() -> serde_json::Value {
    serde_json::json!({
        "name": "envoy.filters.http.grpc_web",
        "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"},
    })
}

/// The names of [`http_filters`], in order.
pub fn filter_names(t: &Translation) -> Vec<String> {
    http_filters(t)
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

/// The virtual host `gloo-system_<name>` of the 8080 route configuration, as JSON.
pub fn vhost_json(t: &Translation, name: &str) -> serde_json::Value {
    let json = proxy_json(t);
    let rc = json["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "listener-::-8080-routes")
        .cloned()
        .expect("route config");
    rc["virtualHosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == format!("gloo-system_{name}"))
        .cloned()
        .unwrap_or_else(|| panic!("no virtual host {name} in {rc:#}"))
}

/// A VirtualService `gloo-system.<name>` on `domain` with vhost options `vh_options` (YAML
/// block, may be empty) and routes `/a` (with `route_options`, may be empty) and `/b` (none),
/// both to `up`.
pub fn vs_with_options(name: &str, domain: &str, vh_options: &str, route_options: &str) -> String {
    let mut vhost = format!("domains: ['{domain}']\n");
    if !vh_options.is_empty() {
        vhost.push_str(&format!("options:\n{}", reindent(vh_options, 2)));
    }
    vhost.push_str("routes:\n- matchers: [{prefix: /a}]\n");
    if !route_options.is_empty() {
        vhost.push_str(&format!("  options:\n{}", reindent(route_options, 4)));
    }
    vhost.push_str("  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n");
    vhost.push_str("- matchers: [{prefix: /b}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n");
    vs(name, &vhost)
}
