//! Pattern 3, the sharded gateway (`examples/sharded-gateway`): one `gloo control-plane`, two
//! `gloo proxy` shards and a stock Envoy shard, each serving only the APIs its Gateway selects,
//! with circuit breakers on every upstream, and a thin `gloo run` edge tier in front.

#[path = "../../gloo-proxy/tests/support/mod.rs"]
mod e2e;
mod support;

use std::process::Command;

use e2e::{free_port, http_get, wait_served, Backend, Behaviour, Proc};

/// Sends `n` requests for `path` to `port` at once; their statuses, and whether each 503
/// said `x-envoy-overloaded`.
fn burst(port: u16, path: &'static str, n: usize) -> Vec<(u16, bool)> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || match http_get(port, path) {
                Ok(r) => (r.status, r.header("x-envoy-overloaded") == Some("true")),
                Err(_) => (0, false),
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap_or((0, false)))
        .collect()
}

/// A slow backend behind circuit breakers of 2 connections and 2 pending requests, on a shard
/// with 2 workers: of 12 requests at once, at most 5 are served and the others overflow with
/// Envoy's 503. Envoy (and gloo, as Envoy) lets a worker with no connection to the endpoint open
/// one even at the limit, so its pending requests are not stuck behind the other worker's
/// connections: with 2 workers, up to 3 connections, plus 2 pending.
fn check_circuit_breaker(shard: &str, port: u16, path: &'static str, backend: &Backend) {
    backend.set_behaviour(Behaviour::DelayMs(3000));
    let statuses = burst(port, path, 12);
    backend.set_behaviour(Behaviour::Ok);
    let served = statuses.iter().filter(|(s, _)| *s == 200).count();
    let overflow = statuses.iter().filter(|(s, o)| *s == 503 && *o).count();
    println!("{shard}: 12 requests at once to a slow upstream: {served} served, {overflow} overflowed (503)");
    assert_eq!(
        served + overflow,
        12,
        "{shard}: every request is either served or overflows: {statuses:?}"
    );
    assert!(
        (2..=5).contains(&served) && overflow >= 7,
        "{shard}: 3 connections + 2 pending serve 5 at most: {statuses:?}"
    );
    assert!(
        backend.max_in_flight() <= 3,
        "{shard}: the backend saw {} requests at once, over maxConnections 2 + 1 worker",
        backend.max_in_flight()
    );
}

#[test]
fn each_shard_serves_its_own_apis_behind_circuit_breakers_and_an_edge_tier() {
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let (orders, catalog, reviews) = (
        Backend::start("orders"),
        Backend::start("catalog"),
        Backend::start("reviews"),
    );
    let (xds, a, b, c, edge) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let (admin_a, admin_b, admin_c, admin_edge) =
        (free_port(), free_port(), free_port(), free_port());
    let replacements: Vec<(String, String)> = [
        ("bindPort: 8081", format!("bindPort: {a}")),
        ("bindPort: 8082", format!("bindPort: {b}")),
        ("bindPort: 8083", format!("bindPort: {c}")),
        ("bindPort: 8080", format!("bindPort: {edge}")),
        ("port: 18081", format!("port: {}", orders.port)),
        ("port: 18082", format!("port: {}", catalog.port)),
        ("port: 18083", format!("port: {}", reviews.port)),
        ("port: 8081}", format!("port: {a}}}")),
        ("port: 8082}", format!("port: {b}}}")),
        ("port: 8083}", format!("port: {c}}}")),
        ("port_value: 9977", format!("port_value: {xds}")),
        ("port_value: 19103", format!("port_value: {admin_c}")),
    ]
    .into_iter()
    .map(|(from, to)| (from.to_string(), to))
    .collect();
    let config = dir.path().join("sharded-gateway");
    support::copy_example("sharded-gateway", &config, &replacements);

    let control_plane = e2e::control_plane(&config.join("control-plane"), xds, None, &logs);
    let xds_url = format!("http://127.0.0.1:{xds}");
    let shard = |name: &'static str, admin: u16| {
        e2e::gloo_ready(
            name,
            &[
                "proxy",
                "--xds",
                &xds_url,
                "--role",
                &format!("gloo-system~{name}"),
                "--workers",
                "2",
            ],
            admin,
            &logs,
        )
    };
    let shard_a = shard("shard-a", admin_a);
    let shard_b = shard("shard-b", admin_b);
    let envoy = Proc::spawn(
        "envoy-shard-c",
        Command::new(e2e::envoy())
            .arg("-c")
            .arg(config.join("envoy-shard-c.yaml"))
            .args(["--base-id", &admin_c.to_string(), "--concurrency", "2"]),
        &logs,
    );
    let _logs = e2e::LogsOnPanic(&config, vec![&control_plane, &shard_a, &shard_b, &envoy]);
    wait_served(a, "/orders/1", "orders");
    wait_served(b, "/catalog/1", "catalog");
    wait_served(c, "/reviews/1", "reviews");

    // Each shard serves only its own APIs: the others' are 404 there.
    for (port, served, others) in [
        (a, "/orders", ["/catalog", "/reviews"]),
        (b, "/catalog", ["/orders", "/reviews"]),
        (c, "/reviews", ["/orders", "/catalog"]),
    ] {
        for path in others {
            let r = http_get(port, path).expect("request");
            assert_eq!(r.status, 404, "{path} on the shard serving {served}: {r:?}");
        }
    }

    // Circuit breakers, on gloo's shards and on Envoy's alike.
    check_circuit_breaker("shard A (gloo proxy)", a, "/orders/slow", &orders);
    check_circuit_breaker("shard C (Envoy)", c, "/reviews/slow", &reviews);
    // Shard A's overflow left shard B alone.
    let r = http_get(b, "/catalog/1").expect("request");
    assert_eq!(r.status, 200, "{r:?}");

    // The thin edge tier routes by prefix to the shards, and knows nothing else.
    let edge_config = config.join("edge");
    let edge_proc = e2e::gloo_ready(
        "edge",
        &[
            "run",
            "--config",
            &edge_config.display().to_string(),
            "--proxy",
            "edge",
            "--ratelimit-server",
            "off",
        ],
        admin_edge,
        &logs,
    );
    let _edge_logs = e2e::LogsOnPanic(&edge_config, vec![&edge_proc]);
    for (path, backend) in [
        ("/orders/1", "orders"),
        ("/catalog/1", "catalog"),
        ("/reviews/1", "reviews"),
    ] {
        let r = http_get(edge, path).expect("request through the edge");
        assert_eq!(r.status, 200, "{path} through the edge: {r:?}");
        assert_eq!(r.header("x-backend"), Some(backend), "{path}: {r:?}");
    }
    let r = http_get(edge, "/payments").expect("request through the edge");
    assert_eq!(r.status, 404, "no shard serves /payments: {r:?}");
}
