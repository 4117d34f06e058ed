//! Settings `watchNamespaces`, `discoveryNamespace` and `gateway.readGatewaysFromAllNamespaces`
//! (see `gloo_core::scope`): one config tree holding two tenants and a shared `platform`
//! namespace; each instance reads only what its Settings watch.

mod common;

use common::{assert_status, cluster_of, proxy, route_config_of, translate, vhost_routes};
use common::{Accepted, Warning};
use gloo_core::model::{Kind, ResourceRef};

/// Team A's Settings: its own namespace (the write namespace) and `platform`.
const TEAM_A_SETTINGS: &str = "
apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {name: default, namespace: team-a}
spec:
  discoveryNamespace: team-a
  watchNamespaces: [team-a, platform]
";

/// Team B's Settings, in the same tree: team A's instance never reads it.
const TEAM_B_SETTINGS: &str = "
apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {name: default, namespace: team-b}
spec:
  discoveryNamespace: team-b
  watchNamespaces: [team-b, platform]
";

fn tenant(team: &str, port: u16, extra_route: &str) -> String {
    format!(
        "
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: gateway, namespace: {team}}}
spec:
  bindAddress: '::'
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: app, namespace: {team}}}
spec:
  static:
    hosts: [{{addr: 10.0.0.1, port: {port}}}]
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: app, namespace: {team}}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /{team}}}]
      routeAction: {{single: {{upstream: {{name: app, namespace: {team}}}}}}}
    - matchers: [{{prefix: /shared}}]
      routeAction: {{single: {{upstream: {{name: shared, namespace: platform}}}}}}
{extra_route}"
    )
}

const PLATFORM: &str = "
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: shared, namespace: platform}
spec:
  static:
    hosts: [{addr: 10.0.0.9, port: 9000}]
---
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: platform, namespace: platform}
spec:
  bindPort: 9090
  httpGateway: {}
";

const STEAL: &str = "    - matchers: [{prefix: /steal}]
      routeAction: {single: {upstream: {name: app, namespace: team-b}}}
";

fn tree(settings: &[&str]) -> String {
    let mut docs: Vec<String> = settings.iter().map(|s| s.to_string()).collect();
    docs.push(tenant("team-a", 8081, STEAL));
    docs.push(tenant("team-b", 8082, ""));
    docs.push(PLATFORM.to_string());
    docs.join("\n---\n")
}

#[test]
fn a_tenant_reads_only_its_watched_namespaces_and_cannot_reach_another_tenants_upstream() {
    let t = translate(&tree(&[TEAM_A_SETTINGS, TEAM_B_SETTINGS]));
    let vs = ResourceRef::new("team-a", "app");
    assert_status(
        &t,
        Kind::VirtualService,
        &vs,
        Warning,
        &[],
        &["spec.virtualHost.routes[2].routeAction.single.upstream: Upstream team-b.app not found (namespace team-b is not among Settings watchNamespaces); the route answers 503 until it exists"],
    );
    // Team B's resources (its Settings included) are not read at all: no status, as Gloo,
    // which never lists them.
    for (kind, name) in [
        (Kind::Gateway, "gateway"),
        (Kind::VirtualService, "app"),
        (Kind::Upstream, "app"),
        (Kind::Settings, "default"),
    ] {
        let r = ResourceRef::new("team-b", name);
        assert!(
            t.reports.get(kind, &r).is_none(),
            "{kind} {r} has a status:\n{}",
            t.reports.to_text()
        );
    }
    assert_status(
        &t,
        Kind::Upstream,
        &ResourceRef::new("platform", "shared"),
        Accepted,
        &[],
        &[],
    );
    // A Gateway in a watched namespace other than the write namespace is not read by default.
    assert_status(
        &t,
        Kind::Gateway,
        &ResourceRef::new("platform", "platform"),
        Warning,
        &[],
        &["not served: Gateways are read from the write namespace team-a only (Settings discoveryNamespace); namespace platform needs Settings gateway.readGatewaysFromAllNamespaces"],
    );

    let p = proxy(&t);
    let listeners: Vec<&String> = p.listeners.keys().collect();
    assert_eq!(listeners, ["listener-::-8081"], "team A's gateway only");
    let rc = route_config_of(p, "listener-::-8081-routes");
    let routes = vhost_routes(rc, "team-a_app");
    assert_eq!(cluster_of(&routes[0]), "app_team-a");
    assert_eq!(cluster_of(&routes[1]), "shared_platform");
    // The route to team B's upstream names a cluster that does not exist: 503, never team B.
    assert_eq!(cluster_of(&routes[2]), "app_team-b");
    let clusters: Vec<&String> = p.clusters.keys().collect();
    assert_eq!(clusters, ["app_team-a", "shared_platform"]);
}

#[test]
fn the_other_tenant_sees_the_mirror_image() {
    let t = translate(&tree(&[TEAM_B_SETTINGS, TEAM_A_SETTINGS]));
    assert_status(
        &t,
        Kind::VirtualService,
        &ResourceRef::new("team-b", "app"),
        Accepted,
        &[],
        &[],
    );
    assert!(t
        .reports
        .get(Kind::VirtualService, &ResourceRef::new("team-a", "app"))
        .is_none());
    let p = proxy(&t);
    let listeners: Vec<&String> = p.listeners.keys().collect();
    assert_eq!(listeners, ["listener-::-8082"]);
    let clusters: Vec<&String> = p.clusters.keys().collect();
    assert_eq!(clusters, ["app_team-b", "shared_platform"]);
}

#[test]
fn read_gateways_from_all_namespaces_serves_gateways_of_every_watched_namespace() {
    let settings = format!("{TEAM_A_SETTINGS}  gateway: {{readGatewaysFromAllNamespaces: true}}\n");
    let t = translate(&tree(&[&settings]));
    assert_status(
        &t,
        Kind::Gateway,
        &ResourceRef::new("platform", "platform"),
        Accepted,
        &[],
        &[],
    );
    let p = proxy(&t);
    let listeners: Vec<&String> = p.listeners.keys().collect();
    assert_eq!(listeners, ["listener-::-8081", "listener-::-9090"]);
    // Still not team B's.
    assert!(t
        .reports
        .get(Kind::Gateway, &ResourceRef::new("team-b", "gateway"))
        .is_none());
}

#[test]
fn without_settings_every_namespace_is_watched_and_gateways_come_from_gloo_system() {
    let t = translate(&tree(&[]));
    // Both tenants' resources are read, so team A's route to team B's upstream resolves
    // (team B's VirtualService loses domain `*` to it on the default gateway).
    let a = common::status(&t, Kind::VirtualService, &ResourceRef::new("team-a", "app"));
    assert!(
        !a.warnings.iter().any(|w| w.contains("not found")),
        "{}",
        t.reports.to_text()
    );
    assert_status(
        &t,
        Kind::Gateway,
        &ResourceRef::new("team-a", "gateway"),
        Warning,
        &[],
        &["not served: Gateways are read from the write namespace gloo-system only (Settings discoveryNamespace); namespace team-a needs Settings gateway.readGatewaysFromAllNamespaces"],
    );
    // With no Gateway read, Gloo's default gateways serve every VirtualService.
    let p = proxy(&t);
    assert!(
        p.listeners.contains_key("listener-::-8080"),
        "{:?}",
        p.listeners.keys()
    );
}

#[test]
fn a_route_to_a_missing_upstream_in_a_watched_namespace_says_only_not_found() {
    let yaml = format!(
        "{TEAM_A_SETTINGS}\n---\n{}",
        tenant(
            "team-a",
            8081,
            "    - matchers: [{prefix: /gone}]\n      routeAction: {single: {upstream: {name: gone, namespace: platform}}}\n"
        )
    );
    let t = translate(&yaml);
    assert_status(
        &t,
        Kind::VirtualService,
        &ResourceRef::new("team-a", "app"),
        Warning,
        &[],
        &[
            "spec.virtualHost.routes[1].routeAction.single.upstream: Upstream platform.shared not found; the route answers 503 until it exists",
            "spec.virtualHost.routes[2].routeAction.single.upstream: Upstream platform.gone not found; the route answers 503 until it exists",
        ],
    );
}
