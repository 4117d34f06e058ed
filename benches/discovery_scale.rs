//! Issue 6's discovery target, against the fake API server of gloo-discovery's tests
//! (path-included): 5,000 Services with 20,000 endpoints (one EndpointSlice of 4 per Service),
//! each Service the upstream of one route (gloo serves the clusters routes use), are
//! discovered and served within 5 s of start, and one endpoint change reaches the proxy
//! within 50 ms of the watch event.
//!
//! The control plane is `gloo run`'s (gloo-proxy's `ControlPlane::start_with`, Settings-driven
//! sources, Kubernetes discovery through kube-rs over HTTP to the fake), in this process.
//! "Served" is the snapshot cache the in-process proxy reads (`feed_from_cache`): start-up ends
//! when the proxy's snapshot holds a ClusterLoadAssignment for every Service with all 20,000
//! endpoints; a change ends when the changed Service's assignment in that snapshot has the new
//! address. The clock of a change starts when the fake API server is handed the new
//! EndpointSlice, just before it writes the watch event (so it includes the event's encoding
//! and the HTTP write).
//!
//! Run: `cargo bench -p gloo-benches --features kubernetes --bench discovery_scale`.
//! Optional: `GLOO_BENCH_SERVICES` (default 5000), `GLOO_BENCH_ITERATIONS` (default 50).

#[path = "../gloo-discovery/tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use fake_apiserver::FakeApiServer;
use gloo_core::xds::ENDPOINT_TYPE;
use gloo_proxy::control_plane::ControlPlane;
use gloo_proxy::sources::SourceOptions;
use gloo_xds::cache::Snapshot;
use prost::Message;
use serde_json::{json, Value};

const ROLE: &str = "gloo-system~gateway-proxy";
const ENDPOINTS_PER_SERVICE: usize = 4;
const TIMEOUT: Duration = Duration::from_secs(120);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn service(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": format!("svc-{i}"), "namespace": "default"},
        // No selector (its EndpointSlices are managed by hand): no Pod is needed behind them.
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    })
}

fn slice(i: usize, generation: usize) -> Value {
    let endpoints: Vec<Value> = (0..ENDPOINTS_PER_SERVICE)
        .map(|e| {
            let ip = if e == 0 && generation > 0 {
                format!("10.200.{}.{}", generation / 250, generation % 250 + 1)
            } else {
                format!("10.{}.{}.{}", i / 250, i % 250, e + 1)
            };
            json!({"addresses": [ip], "conditions": {"ready": true}})
        })
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}-abc"), "namespace": "default", "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints
    })
}

fn cluster(i: usize) -> String {
    format!("default-svc-{i}-80_gloo-system")
}

fn assignment(snapshot: &Snapshot, name: &str) -> Option<ClusterLoadAssignment> {
    let body = &snapshot.resources.get(ENDPOINT_TYPE)?.get(name)?.body;
    ClusterLoadAssignment::decode(body.value.as_slice()).ok()
}

fn addresses(assignment: &ClusterLoadAssignment) -> Vec<String> {
    use envoy_types::pb::envoy::config::core::v3::address::Address;
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    assignment
        .endpoints
        .iter()
        .flat_map(|l| &l.lb_endpoints)
        .filter_map(|e| match &e.host_identifier {
            Some(HostIdentifier::Endpoint(e)) => match e.address.as_ref()?.address.as_ref()? {
                Address::SocketAddress(s) => Some(s.address.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Every Service's assignment is there with all its endpoints.
fn all_served(snapshot: &Snapshot, services: usize) -> bool {
    let Some(endpoints) = snapshot.resources.get(ENDPOINT_TYPE) else {
        return false;
    };
    if endpoints.len() < services {
        return false;
    }
    let total: usize = (0..services)
        .map(|i| assignment(snapshot, &cluster(i)).map_or(0, |a| addresses(&a).len()))
        .sum();
    total == services * ENDPOINTS_PER_SERVICE
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let services = env_number("GLOO_BENCH_SERVICES", 5_000).max(1);
    let iterations = env_number("GLOO_BENCH_ITERATIONS", 50).max(1);
    let fake = FakeApiServer::start().await;
    for i in 0..services {
        fake.apply(service(i));
        fake.apply(slice(i, 0));
    }
    let dir = tempfile::tempdir()?;
    let listen = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    // One route per Service (gloo serves the clusters that routes use).
    let routes: String = (0..services)
        .map(|i| {
            format!(
                "    - matchers: [{{prefix: /svc-{i}/}}]\n      routeAction: {{single: {{upstream: {{name: default-svc-{i}-80, namespace: gloo-system}}}}}}\n"
            )
        })
        .collect();
    std::fs::write(
        dir.path().join("gateway.yaml"),
        format!(
            "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {listen}\n  httpGateway: {{}}\n---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n{routes}"
        ),
    )?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: '{}'}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: nobody}}\ncurrent-context: fake\nusers:\n- name: nobody\n  user: {{}}\n",
            fake.url()
        ),
    )?;
    let options = SourceOptions {
        kubeconfig: Some(kubeconfig),
        ..SourceOptions::default()
    };

    let started = Instant::now();
    let control_plane = ControlPlane::start_with(dir.path(), None, options).await?;
    let mut snapshots = control_plane.cache().subscribe(ROLE);
    let deadline = started + TIMEOUT;
    loop {
        let current: Arc<Snapshot> = snapshots.borrow_and_update().clone();
        if all_served(&current, services) {
            break;
        }
        tokio::time::timeout_at(deadline.into(), snapshots.changed())
            .await
            .map_err(|_| {
                let served = current.resources.get(ENDPOINT_TYPE);
                let names: Vec<&String> = served.iter().flat_map(|m| m.keys()).take(3).collect();
                let first = assignment(&current, &cluster(0)).map(|a| addresses(&a));
                format!(
                    "not all {services} Services served within {TIMEOUT:?}: {} assignments ({names:?}...), {} has {first:?}",
                    served.map_or(0, |m| m.len()),
                    cluster(0),
                )
            })??;
    }
    let startup = started.elapsed();
    println!(
        "start-up: {services} Services / {} endpoints discovered and served in {:.0} ms (target: 5000 ms)",
        services * ENDPOINTS_PER_SERVICE,
        startup.as_secs_f64() * 1000.0
    );

    let mut latencies = Vec::with_capacity(iterations);
    for n in 1..=iterations {
        let i = (n * 7919) % services;
        let changed = slice(i, n);
        let want = changed["endpoints"][0]["addresses"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        snapshots.borrow_and_update();
        let sent = Instant::now();
        fake.apply(changed);
        loop {
            tokio::time::timeout(TIMEOUT, snapshots.changed())
                .await
                .map_err(|_| format!("change {n} not served within {TIMEOUT:?}"))??;
            let current = snapshots.borrow_and_update().clone();
            if assignment(&current, &cluster(i)).is_some_and(|a| addresses(&a).contains(&want)) {
                break;
            }
        }
        latencies.push(sent.elapsed());
        // Let the write of the previous change settle so each one is measured on its own.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pick = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "one endpoint change, watch event to the proxy's snapshot, {iterations} changes: median {:.2} ms, p95 {:.2} ms, max {:.2} ms (target: 50 ms)",
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(pick(1.0)),
    );
    drop(control_plane);
    Ok(())
}
