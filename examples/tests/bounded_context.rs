//! Pattern 4, the bounded-context gateway (`examples/bounded-context`): one VirtualService
//! delegating each team's prefix to that team's RouteTables (by label selector and by
//! reference), a gRPC service among them; a team's bad RouteTable affects only that team's
//! routes, and `gloo validate` and the statuses name it.

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
mod support;

use std::path::Path;
use std::process::Command;

use e2e::{free_port, grpc_backend, grpc_calls, http_get, poll, Backend, LogsOnPanic};

/// The shipped config on free ports, in `dest`.
fn config(dest: &Path, port: u16, orders: u16, payments: u16, echo: u16) {
    let replacements: Vec<(String, String)> = [
        ("bindPort: 8080", format!("bindPort: {port}")),
        ("port: 18081", format!("port: {orders}")),
        ("port: 18082", format!("port: {payments}")),
        ("port: 18083", format!("port: {echo}")),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), to))
    .collect();
    support::copy_example("bounded-context", dest, &replacements);
}

/// The payments team's RouteTable with a regex that does not compile: invalid on its own.
fn bad_payments(payments: u16) -> String {
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: RouteTable
metadata: {{name: payments, namespace: team-payments}}
spec:
  routes:
  - matchers: [{{prefix: /payments/v2}}]
    routeAction: {{single: {{upstream: {{name: payments, namespace: team-payments}}}}}}
  - matchers: [{{regex: "/payments/(["}}]
    routeAction: {{single: {{upstream: {{name: payments, namespace: team-payments}}}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: payments, namespace: team-payments}}
spec:
  static:
    hosts: [{{addr: 127.0.0.1, port: {payments}}}]
"#
    )
}

/// `gloo validate DIR`: exit code and stdout.
fn validate(dir: &Path) -> (Option<i32>, String) {
    let out = Command::new(e2e::gloo_bin())
        .arg("validate")
        .arg(dir)
        .output()
        .expect("run gloo validate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `GET path` answered by backend `backend` (200).
fn assert_routed(port: u16, path: &str, backend: &str) {
    let r = http_get(port, path).expect("request");
    assert_eq!(
        (r.status, r.header("x-backend")),
        (200, Some(backend)),
        "{path}: {r:?}"
    );
}

/// Both teams' HTTP routes and the gRPC team's service answer as configured.
fn assert_all_teams_served(port: u16) {
    assert_routed(port, "/orders/42", "orders");
    // The orders team's lower-weight RouteTable is matched first.
    let r = http_get(port, "/orders/admin/users").expect("request");
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, "orders admin is internal"),
        "{r:?}"
    );
    let text = grpc_calls(port, 20);
    assert_eq!(text.trim(), r#"{"echo": 20}"#, "the gRPC team's service");
}

#[test]
fn each_team_owns_its_routes_and_a_bad_route_table_stays_its_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let (orders, payments) = (Backend::start("orders"), Backend::start("payments"));
    let (echo_port, port, admin) = (free_port(), free_port(), free_port());
    let echo = grpc_backend("echo", echo_port, &logs);
    let cfg = dir.path().join("bounded-context");
    config(&cfg, port, orders.port, payments.port, echo_port);

    let (code, text) = validate(&cfg);
    assert_eq!(code, Some(0), "the shipped config validates:\n{text}");
    for table in [
        "RouteTable team-orders.orders: Accepted",
        "RouteTable team-orders.orders-admin: Accepted",
        "RouteTable team-payments.payments: Accepted",
        "RouteTable team-echo.echo: Accepted",
    ] {
        assert!(text.contains(table), "no `{table}` in:\n{text}");
    }

    let gloo = e2e::gloo_ready(
        "gloo-run",
        &[
            "run",
            "--config",
            &cfg.display().to_string(),
            "--ratelimit-server",
            "off",
        ],
        admin,
        &logs,
    );
    let _logs = LogsOnPanic(&cfg, vec![&gloo, &echo]);
    poll("the payments route", || {
        let r = http_get(port, "/payments/1").map_err(|e| e.to_string())?;
        (r.status == 200).then_some(()).ok_or(format!("{r:?}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_routed(port, "/payments/1", "payments");
    assert_all_teams_served(port);

    // The payments team pushes a RouteTable that does not compile. It is Rejected, naming
    // itself and the field; its last accepted version keeps serving /payments, and nothing
    // of the other teams changes.
    e2e::write_atomically(
        &cfg.join("team-payments/routes.yaml"),
        &bad_payments(payments.port),
    );
    let status = poll("the RouteTable to be rejected in /statuses", || {
        let r = http_get(admin, "/statuses").map_err(|e| e.to_string())?;
        let statuses: serde_json::Value =
            serde_json::from_str(&r.body).map_err(|e| e.to_string())?;
        let rt = &statuses["control_plane"]["resources"]["RouteTable team-payments.payments"];
        let text = rt.to_string();
        if text.contains("Rejected") {
            Ok(text)
        } else {
            Err(r.body)
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.contains("spec.routes[1].matchers[0].regex") && status.contains("invalid regex"),
        "{status}"
    );
    assert!(
        status.contains("the last accepted version keeps serving"),
        "{status}"
    );
    assert_routed(port, "/payments/1", "payments");
    let r = http_get(port, "/payments/v2").expect("request");
    assert_eq!(r.header("x-backend"), Some("payments"), "{r:?}");
    assert_all_teams_served(port);

    // On a fresh start there is no accepted version: `gloo validate` fails, names the
    // RouteTable and why, and says the VirtualService drops only the route delegating to it.
    let (code, text) = validate(&cfg);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("RouteTable team-payments.payments: Rejected")
            && text.contains("invalid regex \"/payments/([\""),
        "{text}"
    );
    assert!(
        text.contains("VirtualService gloo-system.api: Warning")
            && text.contains("spec.virtualHost.routes[1].delegateAction: RouteTable team-payments.payments was rejected and has no accepted version; the route is dropped"),
        "{text}"
    );
    for table in [
        "RouteTable team-orders.orders: Accepted",
        "RouteTable team-orders.orders-admin: Accepted",
        "RouteTable team-echo.echo: Accepted",
    ] {
        assert!(text.contains(table), "no `{table}` in:\n{text}");
    }
    drop(_logs);
    drop(gloo);

    // ...and a gateway started on it serves every other team, while /payments is not routed.
    let admin = free_port();
    let gloo = e2e::gloo_ready(
        "gloo-run-fresh",
        &[
            "run",
            "--config",
            &cfg.display().to_string(),
            "--ratelimit-server",
            "off",
        ],
        admin,
        &logs,
    );
    let _logs = LogsOnPanic(&cfg, vec![&gloo, &echo]);
    poll("the orders route after a fresh start", || {
        let r = http_get(port, "/orders/1").map_err(|e| e.to_string())?;
        (r.status == 200).then_some(()).ok_or(format!("{r:?}"))
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_all_teams_served(port);
    let r = http_get(port, "/payments/1").expect("request");
    assert_eq!(r.status, 404, "the payments route is dropped: {r:?}");
}
