//! One change pushed to 1,000 delta-ADS clients: time until every client has it, and memory
//! per connected client. In-process harness: the gloo-xds server and 1,000 tonic clients (one
//! HTTP/2 connection each) on loopback, all in this process.
//!
//! Run: `cargo bench -p gloo-benches --bench xds_fanout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    aggregated_discovery_service_client::AggregatedDiscoveryServiceClient, DeltaDiscoveryRequest,
};
use envoy_types::pb::google::protobuf::Any;
use gloo_xds::cache::CLUSTER_TYPE;
use gloo_xds::{ServerOptions, Snapshot, SnapshotCache, XdsServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

const CLIENTS: usize = 1_000;
const CLUSTERS: usize = 100;
const ROUNDS: usize = 20;
const ROLE: &str = "gloo-system~gateway-proxy";

fn snapshot(generation: usize) -> Snapshot {
    let mut s = Snapshot::new();
    for c in 0..CLUSTERS {
        // Cluster 0 changes every generation; the rest never do.
        let content = if c == 0 {
            format!("cluster-{c}-gen-{generation}")
        } else {
            format!("cluster-{c}")
        };
        s.insert(
            CLUSTER_TYPE,
            format!("c{c}"),
            content.clone(),
            Any {
                type_url: CLUSTER_TYPE.to_string(),
                value: content.into_bytes(),
            },
        );
    }
    s
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let cache = Arc::new(SnapshotCache::new());
    cache.set(ROLE, snapshot(0));
    let server = XdsServer::new(cache.clone(), ServerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server.into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = rss_kib();

    // Each client reports (client index, generation of cluster c0) for every response.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(usize, usize)>();
    let mut connected = 0;
    for i in 0..CLIENTS {
        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let (tx, requests) = mpsc::channel(4);
        let mut node = Node {
            id: format!("client-{i}"),
            ..Default::default()
        };
        node.metadata = Some(Default::default());
        tx.send(DeltaDiscoveryRequest {
            node: Some(node),
            type_url: CLUSTER_TYPE.to_string(),
            ..Default::default()
        })
        .await
        .expect("first request");
        let mut responses = client
            .delta_aggregated_resources(ReceiverStream::new(requests))
            .await
            .expect("stream")
            .into_inner();
        let seen = seen_tx.clone();
        tokio::spawn(async move {
            while let Some(Ok(response)) = responses.next().await {
                let generation = response
                    .resources
                    .iter()
                    .find(|r| r.name == "c0")
                    .and_then(|r| r.version.rsplit("gen-").next().and_then(|g| g.parse().ok()))
                    .unwrap_or(0);
                let _ = seen.send((i, generation));
                // ACK, as a real client does.
                let _ = tx
                    .send(DeltaDiscoveryRequest {
                        type_url: CLUSTER_TYPE.to_string(),
                        response_nonce: response.nonce,
                        ..Default::default()
                    })
                    .await;
            }
        });
        connected += 1;
    }
    // Initial state of the world for everyone.
    let mut initial = 0;
    while initial < connected {
        if seen_rx.recv().await.is_some() {
            initial += 1;
        }
    }
    let after = rss_kib();

    let mut times = Vec::with_capacity(ROUNDS);
    for generation in 1..=ROUNDS {
        let started = Instant::now();
        cache.set(ROLE, snapshot(generation));
        let mut got = 0;
        while got < CLIENTS {
            match tokio::time::timeout(Duration::from_secs(30), seen_rx.recv()).await {
                Ok(Some((_, g))) if g == generation => got += 1,
                Ok(Some(_)) => {}
                _ => panic!("round {generation}: only {got} of {CLIENTS} clients got the change"),
            }
        }
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "xds_fanout: one change (1 of {CLUSTERS} clusters) to {CLIENTS} delta-ADS clients: min {:.1} ms, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({ROUNDS} rounds)",
        ms(times[0]),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
    );
    println!(
        "xds_fanout: RSS {} KiB before clients, {} KiB with {CLIENTS} connected: {:.1} KiB per client (server and client side of each stream, one process)",
        before,
        after,
        (after.saturating_sub(before)) as f64 / CLIENTS as f64
    );
}
