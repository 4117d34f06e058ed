//! The ADS client against the gloo-xds server over real gRPC: following changes in both
//! protocol forms, refusing (NACKing) what its validator rejects, and reconnecting.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::google::protobuf::Any;
use gloo_xds::cache::{CLUSTER_TYPE, ENDPOINT_TYPE};
use gloo_xds::client::{AdsClient, ClientConfig, ClientState, Protocol};
use gloo_xds::{ServerOptions, Snapshot, SnapshotCache, XdsServer};
use prost::Message;
use tokio::sync::watch;

const ROLE: &str = "gloo-system~gateway-proxy";

/// An encoded message whose field 1 is `name`, like every Envoy resource's name.
fn named(type_url: &str, name: &str, payload: &str) -> Any {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Named {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        payload: String,
    }
    Any {
        type_url: type_url.to_string(),
        value: Named {
            name: name.to_string(),
            payload: payload.to_string(),
        }
        .encode_to_vec(),
    }
}

fn snapshot(clusters: &[(&str, &str)]) -> Snapshot {
    let mut s = Snapshot::new();
    for (name, payload) in clusters {
        s.insert(
            CLUSTER_TYPE,
            *name,
            format!("v-{payload}"),
            named(CLUSTER_TYPE, name, payload),
        );
        s.insert(
            ENDPOINT_TYPE,
            *name,
            format!("e-{payload}"),
            named(ENDPOINT_TYPE, name, payload),
        );
    }
    s
}

/// Serves on `listener` until the returned handle is aborted (a hard stop: connections drop,
/// as when a control plane dies).
async fn serve(
    server: XdsServer,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server.into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await;
    })
}

async fn start() -> (
    Arc<SnapshotCache>,
    XdsServer,
    SocketAddr,
    tokio::task::JoinHandle<()>,
) {
    let cache = Arc::new(SnapshotCache::new());
    let server = XdsServer::new(cache.clone(), ServerOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = serve(server.clone(), listener).await;
    (cache, server, addr, stop)
}

async fn wait_for(
    rx: &mut watch::Receiver<Arc<ClientState>>,
    what: &str,
    pred: impl Fn(&ClientState) -> bool,
) -> Arc<ClientState> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let current = rx.borrow_and_update().clone();
            if pred(&current) {
                return current;
            }
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {what}: {:?}", rx.borrow()))
}

fn names(state: &ClientState, type_url: &str) -> Vec<String> {
    state
        .resources
        .get(type_url)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

fn config(addr: SocketAddr, protocol: Protocol) -> ClientConfig {
    let mut config = ClientConfig::new(format!("http://{addr}"), "proxy-1", ROLE);
    config.protocol = protocol;
    config.types = vec![CLUSTER_TYPE.to_string(), ENDPOINT_TYPE.to_string()];
    config
}

async fn follows_changes(protocol: Protocol) {
    let (cache, _server, addr, _stop) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "two")]));
    let client = AdsClient::spawn(config(addr, protocol));
    let mut rx = client.state();
    wait_for(&mut rx, "both clusters", |s| {
        names(s, CLUSTER_TYPE) == ["c1", "c2"] && names(s, ENDPOINT_TYPE) == ["c1", "c2"]
    })
    .await;
    cache.set(ROLE, snapshot(&[("c2", "TWO"), ("c3", "three")]));
    let s = wait_for(&mut rx, "the change", |s| {
        names(s, CLUSTER_TYPE) == ["c2", "c3"]
    })
    .await;
    assert!(s.connected);
    let c2 = &s.resources[CLUSTER_TYPE]["c2"];
    assert_eq!(*c2.body, named(CLUSTER_TYPE, "c2", "TWO"));
}

#[tokio::test]
async fn delta_client_follows_changes_and_removals() {
    follows_changes(Protocol::Delta).await;
}

#[tokio::test]
async fn sotw_client_follows_changes_and_removals() {
    follows_changes(Protocol::StateOfTheWorld).await;
}

async fn refuses_what_the_validator_rejects(protocol: Protocol) {
    let (cache, server, addr, _stop) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "good")]));
    let mut config = config(addr, protocol);
    config.validator = Arc::new(|type_url, resources| {
        let bad = named(type_url, "c1", "bad");
        if resources.values().any(|a| **a == bad) {
            Err("c1 is bad".to_string())
        } else {
            Ok(())
        }
    });
    let client = AdsClient::spawn(config);
    let mut rx = client.state();
    wait_for(&mut rx, "the good version", |s| {
        names(s, CLUSTER_TYPE) == ["c1"]
    })
    .await;
    cache.set(ROLE, snapshot(&[("c1", "bad")]));
    tokio::time::timeout(Duration::from_secs(10), async {
        while server.nacks().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the client NACKs clusters and endpoints");
    let nacks = server.nacks();
    assert!(
        nacks
            .iter()
            .all(|n| n.node_id == "proxy-1" && n.error == "c1 is bad"),
        "{nacks:?}"
    );
    // The last accepted state stays in force.
    let held = rx.borrow().clone();
    assert_eq!(
        *held.resources[CLUSTER_TYPE]["c1"].body,
        named(CLUSTER_TYPE, "c1", "good")
    );
    // A fix is accepted.
    cache.set(ROLE, snapshot(&[("c1", "fixed")]));
    wait_for(&mut rx, "the fix", |s| {
        s.resources
            .get(CLUSTER_TYPE)
            .and_then(|r| r.get("c1"))
            .is_some_and(|r| *r.body == named(CLUSTER_TYPE, "c1", "fixed"))
    })
    .await;
}

#[tokio::test]
async fn delta_client_nacks_and_keeps_the_last_accepted_state() {
    refuses_what_the_validator_rejects(Protocol::Delta).await;
}

#[tokio::test]
async fn sotw_client_nacks_and_keeps_the_last_accepted_state() {
    refuses_what_the_validator_rejects(Protocol::StateOfTheWorld).await;
}

/// A TCP forwarder standing for the network between client and server: aborting it drops
/// every connection, as when the control plane's host goes away.
fn forwarder(listener: tokio::net::TcpListener, to: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

#[tokio::test]
async fn client_keeps_its_state_while_the_server_is_away_and_reconnects() {
    let (cache, _server, server_addr, _stop) = start().await;
    cache.set(ROLE, snapshot(&[("c1", "one")]));
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let network = forwarder(front, server_addr);
    let client = AdsClient::spawn(config(addr, Protocol::Delta));
    let mut rx = client.state();
    wait_for(&mut rx, "the first state", |s| {
        s.connected && names(s, CLUSTER_TYPE) == ["c1"]
    })
    .await;
    // The network goes away (aborting the forwarder drops its JoinSet and every connection).
    network.abort();
    let s = wait_for(&mut rx, "the disconnect", |s| !s.connected).await;
    assert_eq!(names(&s, CLUSTER_TYPE), ["c1"], "the last state is kept");
    // Meanwhile the configuration changes; when the network is back the client catches up.
    cache.set(ROLE, snapshot(&[("c1", "one"), ("c2", "two")]));
    let front = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let _network = forwarder(front, server_addr);
    wait_for(&mut rx, "the reconnect and the new cluster", |s| {
        s.connected && names(s, CLUSTER_TYPE) == ["c1", "c2"]
    })
    .await;
}
