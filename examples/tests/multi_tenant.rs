//! Pattern 6, multi-tenant ingress (`examples/multi-tenant`): one `gloo run` per team, each
//! with Settings `watchNamespaces` of its own namespace plus a shared `platform` namespace,
//! all resources in one shared config tree. Each gateway serves its team's routes only; a
//! route naming another team's Upstream is a warning and answers 503, never reaching the
//! other team's backend; the shared platform Upstream works for both; a team's bad config
//! and even its gateway going down leave the other team's gateway alone.

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
mod support;

use std::path::Path;

use e2e::{free_port, http_get, poll, wait_served, Backend, LogsOnPanic, Proc};

/// `gloo run` of one team's install (`<config>/<team>`), with no rate limit or ext auth
/// service and no discovery (the example uses none).
fn team_gloo(name: &'static str, config: &Path, admin: u16, logs: &Path) -> Proc {
    let dir = config.join(name).display().to_string();
    e2e::gloo_ready(
        name,
        &[
            "run",
            "--config",
            &dir,
            "--ratelimit-server",
            "off",
            "--extauth-server",
            "off",
            "--no-discovery",
        ],
        admin,
        logs,
    )
}

/// The statuses one install reports, as JSON: `{"Kind ns.name": {...}}`.
fn statuses(admin: u16) -> serde_json::Map<String, serde_json::Value> {
    let body = e2e::admin_get(admin, "/statuses");
    let all: serde_json::Value = serde_json::from_str(&body).expect("statuses are JSON");
    all["control_plane"]["resources"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("no control_plane.resources in {body}"))
}

/// Asserts an install reports nothing about namespace `other`: it never read it.
fn assert_never_read(admin: u16, other: &str) {
    let statuses = statuses(admin);
    let seen: Vec<&String> = statuses
        .keys()
        .filter(|k| k.contains(&format!(" {other}.")))
        .collect();
    assert!(seen.is_empty(), "resources of {other} were read: {seen:?}");
}

/// Team B's VirtualService with a regex that does not compile: Rejected on its own.
fn bad_team_b(port: u16, billing: u16) -> String {
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: gateway, namespace: team-b}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: payments, namespace: team-b}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{regex: "/billing/(["}}]
      routeAction: {{single: {{upstream: {{name: billing, namespace: team-b}}}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: billing, namespace: team-b}}
spec:
  static:
    hosts: [{{addr: 127.0.0.1, port: {billing}}}]
"#
    )
}

#[test]
fn each_team_gateway_sees_only_its_namespaces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let (orders, billing, echo) = (
        Backend::start("orders"),
        Backend::start("billing"),
        Backend::start("echo"),
    );
    let (a, b, admin_a, admin_b) = (free_port(), free_port(), free_port(), free_port());
    let replacements: Vec<(String, String)> = [
        ("bindPort: 8081", format!("bindPort: {a}")),
        ("bindPort: 8082", format!("bindPort: {b}")),
        ("port: 18081", format!("port: {}", orders.port)),
        ("port: 18082", format!("port: {}", billing.port)),
        ("port: 18083", format!("port: {}", echo.port)),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), to))
    .collect();
    let config = dir.path().join("multi-tenant");
    support::copy_example("multi-tenant", &config, &replacements);

    let gloo_a = team_gloo("team-a", &config, admin_a, &logs);
    let mut gloo_b = team_gloo("team-b", &config, admin_b, &logs);
    {
        let _logs = LogsOnPanic(&config, vec![&gloo_a, &gloo_b]);
        wait_served(a, "/orders/1", "orders");
        wait_served(b, "/billing/1", "billing");
        // The shared platform namespace is watched by both: its Upstream serves both teams.
        wait_served(a, "/shared/1", "echo");
        wait_served(b, "/shared/1", "echo");

        // A team's gateway serves only its own routes.
        let r = http_get(b, "/orders/1").expect("request");
        assert_eq!(r.status, 404, "team A's route on team B's gateway: {r:?}");

        // Team A's route to team B's Upstream: not found (team-b is not watched), 503, and
        // team B's backend never sees the request.
        let before = billing.count();
        let r = http_get(a, "/billing/1").expect("request");
        assert_eq!(r.status, 503, "a route to another tenant's upstream: {r:?}");
        assert_ne!(r.header("x-backend"), Some("billing"), "{r:?}");
        assert_eq!(
            billing.count(),
            before,
            "team B's backend was reached from team A"
        );

        let a_statuses = statuses(admin_a);
        let vs = a_statuses["VirtualService team-a.shop"].to_string();
        assert!(
            vs.contains("Warning")
                && vs.contains("spec.virtualHost.routes[2].routeAction.single.upstream: Upstream team-b.billing not found (namespace team-b is not among Settings watchNamespaces); the route answers 503 until it exists"),
            "{vs}"
        );
        assert_never_read(admin_a, "team-b");
        assert_never_read(admin_b, "team-a");
        let vs_b = statuses(admin_b)["VirtualService team-b.payments"].to_string();
        assert!(vs_b.contains("Accepted"), "{vs_b}");

        // Team B pushes a VirtualService that does not compile. Team B's install rejects it
        // and keeps serving its last accepted version; team A's install does not even read it.
        e2e::write_atomically(
            &config.join("shared/team-b.yaml"),
            &bad_team_b(b, billing.port),
        );
        let rejected = poll("team B's VirtualService to be rejected", || {
            let vs = statuses(admin_b)["VirtualService team-b.payments"].to_string();
            if vs.contains("Rejected") {
                Ok(vs)
            } else {
                Err(vs)
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(rejected.contains("invalid regex"), "{rejected}");
        wait_served(b, "/billing/1", "billing");
        wait_served(a, "/orders/1", "orders");
        wait_served(a, "/shared/1", "echo");
        assert_never_read(admin_a, "team-b");
    }

    // Team B's gateway goes down altogether: team A's keeps serving.
    gloo_b.kill();
    let _logs = LogsOnPanic(&config, vec![&gloo_a]);
    assert!(
        http_get(b, "/billing/1").is_err(),
        "team B's gateway is down"
    );
    wait_served(a, "/orders/1", "orders");
    wait_served(a, "/shared/1", "echo");
}
