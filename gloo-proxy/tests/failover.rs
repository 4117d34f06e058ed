//! Upstream `failover` (endpoint priority levels) on our data plane against real Envoy 1.40,
//! differential-test style: the same Gloo config (one directory per proxy, differing only in
//! the Gateway's `bindPort`) is served to Envoy by `gloo control-plane` over delta ADS and run by
//! `gloo run`, and the same requests go to both. The backends' health checks (`/healthz`) are
//! switched between 200 and 503; both proxies must then split the load between the priority
//! levels the same way:
//!
//! - `/failover`: one primary (priority 0), one failover endpoint (priority 1): everything to
//!   the primary while it is healthy, everything to the failover endpoint once it is not, and
//!   back when it recovers;
//! - `/split`: two primaries, one of which is unhealthy (health 1.4 × 1/2 = 70%), and one
//!   failover endpoint: 70% of requests to priority 0, 30% to priority 1 (a binomial sample of
//!   200 requests; the bounds are more than four standard deviations wide).
//!
//! The health checks say `noTrafficInterval: 1s`: Envoy checks a cluster that has not yet had
//! traffic at that interval (60 s by default), and keeps the timer it set then.
//!
//! The Envoy binary comes from `GLOO_TEST_ENVOY` (set by `scripts/test.sh`).

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use support::{
    control_plane, free_port, gloo_run, http_get, poll, spawn_envoy, Backend, Mode, Proc,
};

fn config(port: u16, backends: &BTreeMap<&str, Backend>) -> String {
    let port_of = |name: &str| backends[name].port;
    let health = "  healthChecks:\n  - {timeout: 1s, interval: 1s, noTrafficInterval: 1s, unhealthyThreshold: 1, healthyThreshold: 1, httpHealthCheck: {path: /healthz}}\n";
    let failover = |port: u16| {
        format!(
            "  failover:\n    prioritizedLocalities:\n    - localityEndpoints:\n      - locality: {{region: elsewhere}}\n        lbEndpoints: [{{address: 127.0.0.1, port: {port}}}]\n"
        )
    };
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: http, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: app, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /failover}}]
      routeAction: {{single: {{upstream: {{name: failover, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /split}}]
      routeAction: {{single: {{upstream: {{name: split, namespace: gloo-system}}}}}}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: failover, namespace: gloo-system}}
spec:
  static:
    hosts: [{{addr: 127.0.0.1, port: {primary}}}]
{health}{failover_primary}---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: split, namespace: gloo-system}}
spec:
  static:
    hosts: [{{addr: 127.0.0.1, port: {split_a}}}, {{addr: 127.0.0.1, port: {split_b}}}]
{health}{failover_split}"#,
        primary = port_of("primary"),
        split_a = port_of("split-a"),
        split_b = port_of("split-b"),
        failover_primary = failover(port_of("secondary")),
        failover_split = failover(port_of("split-failover")),
    )
}

/// Sends `n` requests to `path` and counts them by the backend that answered.
fn spread(port: u16, path: &str, n: usize) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let who = match http_get(port, path) {
            Ok(r) if r.status == 200 => r.header("x-backend").unwrap_or("?").to_string(),
            Ok(r) => format!("status {}", r.status),
            Err(e) => format!("error {e}"),
        };
        *out.entry(who).or_default() += 1;
    }
    out
}

/// Polls until 20 requests in a row to `path` all reach `backend`.
fn wait_all_to((proxy, port, admin): (&str, u16, u16), path: &str, backend: &str, procs: &[&Proc]) {
    if let Err(e) = poll(&format!("{proxy}: {path} all to {backend}"), || {
        let seen = spread(port, path, 20);
        if seen.get(backend) == Some(&20) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    }) {
        let logs: String = procs.iter().map(|p| p.logs()).collect();
        let clusters = http_get(admin, "/clusters")
            .map(|r| r.body)
            .unwrap_or_default();
        panic!("{e}\n{proxy}'s /clusters:\n{clusters}\n{logs}");
    }
}

#[test]
fn priority_levels_fail_over_and_split_load_as_envoy_does() {
    let root = tempfile::tempdir().expect("tempdir");
    let backends: BTreeMap<&str, Backend> = [
        "primary",
        "secondary",
        "split-a",
        "split-b",
        "split-failover",
    ]
    .into_iter()
    .map(|name| (name, Backend::start(name)))
    .collect();
    let (envoy_port, gloo_port) = (free_port(), free_port());
    let (xds, envoy_admin, gloo_admin) = (free_port(), free_port(), free_port());
    let write = |dir: &Path, port: u16| {
        let config = dir.join("config");
        fs::create_dir_all(&config).expect("config dir");
        fs::write(config.join("gloo.yaml"), self::config(port, &backends)).expect("write");
        config
    };
    let envoy_dir = root.path().join("envoy");
    let gloo_dir = root.path().join("gloo");
    let envoy_config = write(&envoy_dir, envoy_port);
    let gloo_config = write(&gloo_dir, gloo_port);

    let control = control_plane(&envoy_config, xds, None, &envoy_dir);
    let envoy = spawn_envoy(Mode::Delta, xds, envoy_admin, &envoy_dir);
    let gloo = gloo_run(&gloo_config, gloo_admin, &gloo_dir);
    let procs = [&control, &envoy, &gloo];
    let proxies = [
        ("envoy", envoy_port, envoy_admin),
        ("gloo", gloo_port, gloo_admin),
    ];

    // Everything healthy: priority 0 takes all the load.
    for proxy in proxies {
        wait_all_to(proxy, "/failover", "primary", &procs);
    }

    // The primary fails its health check: priority 1 takes all the load.
    backends["primary"].set_health(503);
    for proxy in proxies {
        wait_all_to(proxy, "/failover", "secondary", &procs);
    }

    // It recovers: back to priority 0.
    backends["primary"].set_health(200);
    for proxy in proxies {
        wait_all_to(proxy, "/failover", "primary", &procs);
    }

    // Half of priority 0 unhealthy: 70% stays there, 30% spills to priority 1.
    backends["split-b"].set_health(503);
    for (proxy, port, _) in proxies {
        // Wait until split-b is out of rotation (only split-a and the failover answer).
        if let Err(e) = poll(&format!("{proxy}: split-b out of rotation"), || {
            let seen = spread(port, "/split", 40);
            if seen.contains_key("split-b") || !seen.contains_key("split-failover") {
                Err(format!("{seen:?}"))
            } else {
                Ok(())
            }
        }) {
            let logs: String = procs.iter().map(|p| p.logs()).collect();
            panic!("{e}\n{logs}");
        }
        let seen = spread(port, "/split", 200);
        let primary = seen.get("split-a").copied().unwrap_or(0);
        let failover = seen.get("split-failover").copied().unwrap_or(0);
        assert_eq!(primary + failover, 200, "{proxy}: {seen:?}");
        assert!(
            (110..=170).contains(&primary),
            "{proxy}: about 70% should stay at priority 0 (140 of 200): {seen:?}"
        );
    }
}
