//! The xDS protocol, driven by a scripted client over a real gRPC connection: subscriptions,
//! versions, nonces, ACK and NACK, removals, reconnects, and a client that never ACKs.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    aggregated_discovery_service_client::AggregatedDiscoveryServiceClient, DeltaDiscoveryRequest,
    DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::{value, Any, Struct, Value};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gloo_xds::cache::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE};
use gloo_xds::{ServerOptions, Snapshot, SnapshotCache, XdsServer};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

const ROLE: &str = "gloo-system~gateway-proxy";

fn node(role: Option<&str>) -> Node {
    let mut fields = std::collections::HashMap::new();
    if let Some(role) = role {
        fields.insert(
            "role".to_string(),
            Value {
                kind: Some(value::Kind::StringValue(role.to_string())),
            },
        );
    }
    Node {
        id: "test-node".to_string(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

fn any(type_url: &str, payload: &str) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: payload.as_bytes().to_vec(),
    }
}

/// A snapshot with clusters `c1..cN` (content `payload`) and endpoints for each.
fn snapshot(clusters: &[(&str, &str)]) -> Snapshot {
    let mut s = Snapshot::new();
    for (name, payload) in clusters {
        s.insert(
            CLUSTER_TYPE,
            *name,
            format!("v-{payload}"),
            any(CLUSTER_TYPE, payload),
        );
        s.insert(
            ENDPOINT_TYPE,
            *name,
            format!("e-{payload}"),
            any(ENDPOINT_TYPE, payload),
        );
    }
    s
}

async fn start() -> (Arc<SnapshotCache>, XdsServer, SocketAddr) {
    let cache = Arc::new(SnapshotCache::new());
    let server = XdsServer::new(cache.clone(), ServerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = server.clone().into_service();
    let per_type = server.per_type_services();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(per_type.clusters)
            .add_service(per_type.listeners)
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (cache, server, addr)
}

async fn client(addr: SocketAddr) -> AggregatedDiscoveryServiceClient<tonic::transport::Channel> {
    for _ in 0..50 {
        if let Ok(c) = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}")).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("server did not start")
}

struct Sotw {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: tonic::Streaming<DiscoveryResponse>,
}

impl Sotw {
    async fn open(addr: SocketAddr) -> Sotw {
        let (tx, requests) = mpsc::channel(16);
        let mut c = client(addr).await;
        let rx = c
            .stream_aggregated_resources(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Sotw { tx, rx }
    }
    async fn send(&self, request: DiscoveryRequest) {
        self.tx.send(request).await.unwrap();
    }
    async fn next(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.next())
            .await
            .expect("a response")
            .expect("stream open")
            .expect("ok")
    }
    async fn nothing_for(&mut self, wait: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(wait, self.rx.next()).await {
            panic!(
                "unexpected response {:?}",
                r.map(|r| (r.type_url, r.version_info))
            );
        }
    }
}

fn request(type_url: &str, names: &[&str], version: &str, nonce: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        node: Some(node(Some(ROLE))),
        type_url: type_url.to_string(),
        resource_names: names.iter().map(|n| n.to_string()).collect(),
        version_info: version.to_string(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    }
}

fn payloads(r: &DiscoveryResponse) -> Vec<String> {
    r.resources
        .iter()
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
        .collect()
}

#[tokio::test]
async fn sotw_wildcard_ack_update_and_named_subscription() {
    let (cache, _server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "two")]));
    let mut s = Sotw::open(addr).await;
    s.send(request(CLUSTER_TYPE, &[], "", "")).await;
    let r = s.next().await;
    assert_eq!(payloads(&r), ["one", "two"]);
    // ACK: nothing more until the snapshot changes.
    s.send(request(CLUSTER_TYPE, &[], &r.version_info, &r.nonce))
        .await;
    s.nothing_for(Duration::from_millis(200)).await;
    // EDS by name: only what is asked for.
    s.send(request(ENDPOINT_TYPE, &["c2"], "", "")).await;
    let e = s.next().await;
    assert_eq!(payloads(&e), ["two"]);
    s.send(request(ENDPOINT_TYPE, &["c2"], &e.version_info, &e.nonce))
        .await;
    // A change pushes clusters before endpoints, and only types whose content changed.
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "TWO")]));
    let first = s.next().await;
    let second = s.next().await;
    assert_eq!(first.type_url, CLUSTER_TYPE);
    assert_eq!(payloads(&first), ["one", "TWO"]);
    assert_ne!(first.version_info, r.version_info);
    assert_eq!(second.type_url, ENDPOINT_TYPE);
    assert_eq!(payloads(&second), ["TWO"]);
    // Setting identical content sends nothing.
    s.send(request(
        CLUSTER_TYPE,
        &[],
        &first.version_info,
        &first.nonce,
    ))
    .await;
    s.send(request(
        ENDPOINT_TYPE,
        &["c2"],
        &second.version_info,
        &second.nonce,
    ))
    .await;
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "TWO")]));
    s.nothing_for(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn sotw_stale_nonces_are_ignored_and_nacks_are_recorded_then_fixed() {
    let (cache, server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one")]));
    let mut s = Sotw::open(addr).await;
    s.send(request(CLUSTER_TYPE, &[], "", "")).await;
    let r1 = s.next().await;
    cache.set(ROLE, snapshot(&[("c1", "bad")]));
    let r2 = s.next().await;
    // A reply to the superseded response (stale nonce) changes nothing and gets no answer.
    let mut stale = request(CLUSTER_TYPE, &["c1"], &r1.version_info, &r1.nonce);
    stale.error_detail = Some(RpcStatus {
        code: 3,
        message: "stale".into(),
        details: vec![],
    });
    s.send(stale).await;
    s.nothing_for(Duration::from_millis(200)).await;
    assert!(server.nacks().is_empty());
    // NACK of the current response: recorded with node, type, version and the error.
    let mut nack = request(CLUSTER_TYPE, &[], &r1.version_info, &r2.nonce);
    nack.error_detail = Some(RpcStatus {
        code: 3,
        message: "cluster c1: bad config".into(),
        details: vec![],
    });
    s.send(nack).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let nacks = server.nacks();
    assert_eq!(nacks.len(), 1);
    assert_eq!(nacks[0].node_id, "test-node");
    assert_eq!(nacks[0].role, ROLE);
    assert_eq!(nacks[0].type_url, CLUSTER_TYPE);
    assert_eq!(nacks[0].version, r2.version_info);
    assert_eq!(nacks[0].error, "cluster c1: bad config");
    // The server does not resend the refused version; a fix is pushed as a new version.
    s.nothing_for(Duration::from_millis(200)).await;
    cache.set(ROLE, snapshot(&[("c1", "fixed")]));
    let r3 = s.next().await;
    assert_eq!(payloads(&r3), ["fixed"]);
}

#[tokio::test]
async fn a_node_without_a_role_gets_the_default_role() {
    let (cache, _server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "default-role")]));
    let mut s = Sotw::open(addr).await;
    let mut r = request(CLUSTER_TYPE, &[], "", "");
    r.node = Some(node(None));
    s.send(r).await;
    assert_eq!(payloads(&s.next().await), ["default-role"]);
}

#[tokio::test]
async fn a_client_that_never_reads_holds_bounded_memory_and_then_gets_the_latest() {
    let (cache, _server, addr) = start().await;
    let mut s = Sotw::open(addr).await;
    s.send(request(CLUSTER_TYPE, &[], "", "")).await;
    s.next().await;
    // 300 updates of 100 KB each (30 MB) while the client reads nothing. The stream's buffer
    // holds a few responses and HTTP/2 flow control stops the rest: the server blocks that
    // stream instead of queueing, then sends the newest content once the client reads.
    let big = "x".repeat(100_000);
    for i in 0..300 {
        cache.set(ROLE, snapshot(&[("c1", &format!("gen-{i:03}-{big}"))]));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut last = String::new();
    let mut received = 0;
    while let Ok(Some(Ok(r))) = tokio::time::timeout(Duration::from_millis(500), s.rx.next()).await
    {
        received += 1;
        last = payloads(&r).join(",");
    }
    assert!(
        last.starts_with("gen-299-"),
        "the newest content arrives last"
    );
    assert!(
        received <= 60,
        "{received} responses of 100 KB were held for a client that never read"
    );
}

// ----- delta -------------------------------------------------------------------------------

struct Delta {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: tonic::Streaming<DeltaDiscoveryResponse>,
}

impl Delta {
    async fn open(addr: SocketAddr) -> Delta {
        let (tx, requests) = mpsc::channel(16);
        let mut c = client(addr).await;
        let rx = c
            .delta_aggregated_resources(ReceiverStream::new(requests))
            .await
            .unwrap()
            .into_inner();
        Delta { tx, rx }
    }
    async fn send(&self, request: DeltaDiscoveryRequest) {
        self.tx.send(request).await.unwrap();
    }
    async fn next(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.next())
            .await
            .expect("a response")
            .expect("stream open")
            .expect("ok")
    }
    async fn nothing_for(&mut self, wait: Duration) {
        if let Ok(Some(r)) = tokio::time::timeout(wait, self.rx.next()).await {
            panic!(
                "unexpected response {:?}",
                r.map(|r| (r.type_url, r.resources.len(), r.removed_resources))
            );
        }
    }
}

fn delta(
    type_url: &str,
    subscribe: &[&str],
    unsubscribe: &[&str],
    nonce: &str,
) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: Some(node(Some(ROLE))),
        type_url: type_url.to_string(),
        resource_names_subscribe: subscribe.iter().map(|n| n.to_string()).collect(),
        resource_names_unsubscribe: unsubscribe.iter().map(|n| n.to_string()).collect(),
        response_nonce: nonce.to_string(),
        ..Default::default()
    }
}

fn names(r: &DeltaDiscoveryResponse) -> Vec<String> {
    r.resources.iter().map(|x| x.name.clone()).collect()
}

#[tokio::test]
async fn delta_sends_only_changes_and_removals() {
    let (cache, _server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "two")]));
    let mut d = Delta::open(addr).await;
    d.send(delta(CLUSTER_TYPE, &[], &[], "")).await;
    let r = d.next().await;
    assert_eq!(names(&r), ["c1", "c2"]);
    d.send(delta(CLUSTER_TYPE, &[], &[], &r.nonce)).await;
    d.nothing_for(Duration::from_millis(200)).await;
    // One resource changes, one disappears, one appears.
    cache.set(ROLE, snapshot(&[("c1", "ONE"), ("c3", "three")]));
    let r = d.next().await;
    assert_eq!(names(&r), ["c1", "c3"]);
    assert_eq!(r.resources[0].version, "v-ONE");
    assert_eq!(r.removed_resources, ["c2"]);
}

#[tokio::test]
async fn delta_named_subscribe_and_unsubscribe() {
    let (cache, _server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "two")]));
    let mut d = Delta::open(addr).await;
    d.send(delta(ENDPOINT_TYPE, &["c1"], &[], "")).await;
    let r = d.next().await;
    assert_eq!(names(&r), ["c1"]);
    d.send(delta(ENDPOINT_TYPE, &["c2"], &[], &r.nonce)).await;
    let r = d.next().await;
    assert_eq!(names(&r), ["c2"], "only the new subscription is sent");
    d.send(delta(ENDPOINT_TYPE, &[], &["c1"], &r.nonce)).await;
    // The unsubscribe is answered by nothing (nothing new to send)...
    d.nothing_for(Duration::from_millis(200)).await;
    // ...and after it, changes to c1 are not sent.
    cache.set(ROLE, snapshot(&[("c1", "ONE"), ("c2", "two")]));
    d.nothing_for(Duration::from_millis(200)).await;
    cache.set(ROLE, snapshot(&[("c1", "ONE"), ("c2", "TWO")]));
    let r = d.next().await;
    assert_eq!(names(&r), ["c2"]);
}

#[tokio::test]
async fn delta_reconnect_with_initial_versions_sends_only_what_differs() {
    let (cache, _server, addr) = start().await;
    cache.set(
        ROLE,
        snapshot(&[("c1", "one"), ("c2", "two"), ("c3", "three")]),
    );
    let mut d = Delta::open(addr).await;
    let mut first = delta(CLUSTER_TYPE, &[], &[], "");
    // The client held c1 and c2 from an earlier stream, c2 in an old version, and c9 which is gone.
    first.initial_resource_versions = [
        ("c1".to_string(), "v-one".to_string()),
        ("c2".to_string(), "v-old".to_string()),
        ("c9".to_string(), "v-gone".to_string()),
    ]
    .into_iter()
    .collect();
    d.send(first).await;
    let r = d.next().await;
    assert_eq!(names(&r), ["c2", "c3"]);
    assert_eq!(r.removed_resources, ["c9"]);
}

#[tokio::test]
async fn delta_nack_is_recorded_and_not_resent() {
    let (cache, server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one")]));
    let mut d = Delta::open(addr).await;
    d.send(delta(CLUSTER_TYPE, &[], &[], "")).await;
    let r = d.next().await;
    let mut nack = delta(CLUSTER_TYPE, &[], &[], &r.nonce);
    nack.error_detail = Some(RpcStatus {
        code: 3,
        message: "rejected c1".into(),
        details: vec![],
    });
    d.send(nack).await;
    d.nothing_for(Duration::from_millis(200)).await;
    let nacks = server.nacks();
    assert_eq!(nacks.len(), 1);
    assert_eq!(
        (nacks[0].type_url.as_str(), nacks[0].error.as_str()),
        (CLUSTER_TYPE, "rejected c1")
    );
    cache.set(ROLE, snapshot(&[("c1", "fixed")]));
    assert_eq!(d.next().await.resources[0].version, "v-fixed");
}

#[tokio::test]
async fn listeners_are_wildcard_by_default_and_roles_are_isolated() {
    let (cache, _server, addr) = start().await;
    let mut other = Snapshot::new();
    other.insert(LISTENER_TYPE, "l-other", "1", any(LISTENER_TYPE, "other"));
    cache.set("gloo-system~other-proxy", other);
    let mut mine = Snapshot::new();
    mine.insert(LISTENER_TYPE, "l-mine", "1", any(LISTENER_TYPE, "mine"));
    cache.set(ROLE, mine);
    let mut s = Sotw::open(addr).await;
    s.send(request(LISTENER_TYPE, &[], "", "")).await;
    assert_eq!(payloads(&s.next().await), ["mine"]);
}

#[tokio::test]
async fn per_type_services_stream_and_fetch_from_the_same_cache() {
    use envoy_types::pb::envoy::service::cluster::v3::cluster_discovery_service_client::ClusterDiscoveryServiceClient;
    use envoy_types::pb::envoy::service::listener::v3::listener_discovery_service_client::ListenerDiscoveryServiceClient;
    let (cache, _server, addr) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one")]));
    let _ = client(addr).await;
    // CDS as its own stream; the request may leave type_url empty.
    let mut cds = ClusterDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let (tx, requests) = mpsc::channel(4);
    let mut responses = cds
        .stream_clusters(ReceiverStream::new(requests))
        .await
        .unwrap()
        .into_inner();
    let mut first = request(CLUSTER_TYPE, &[], "", "");
    first.type_url.clear();
    tx.send(first).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), responses.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.type_url.as_str(), payloads(&r)),
        (CLUSTER_TYPE, vec!["one".to_string()])
    );
    // A one-shot fetch of listeners.
    let mut mine = snapshot(&[("c1", "one")]);
    mine.insert(LISTENER_TYPE, "l1", "1", any(LISTENER_TYPE, "listener"));
    cache.set(ROLE, mine);
    let mut lds = ListenerDiscoveryServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let fetched = lds
        .fetch_listeners(request(LISTENER_TYPE, &[], "", ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(payloads(&fetched), ["listener"]);
}
