//! An ADS client: subscribes to everything its role is served, keeps the last accepted state,
//! validates each response before accepting it (a refused response is NACKed with the reason
//! and the previous state stays in force), and reconnects with backoff, telling a delta server
//! what it already holds.
//!
//! gloo-proxy uses it to follow a `gloo control-plane` over the network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    aggregated_discovery_service_client::AggregatedDiscoveryServiceClient, DeltaDiscoveryRequest,
    DiscoveryRequest,
};
use envoy_types::pb::google::protobuf::{value, Any, Struct, Value};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::cache::{CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};

/// Which form of the protocol the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// State of the world: every response carries all resources of its type.
    StateOfTheWorld,
    /// Delta (incremental): responses carry only changes and removals.
    Delta,
}

/// Decides whether a type's new resources are acceptable; an error is sent back as a NACK.
pub type Validator =
    Arc<dyn Fn(&str, &BTreeMap<String, Arc<Any>>) -> Result<(), String> + Send + Sync>;

/// Client settings.
#[derive(Clone)]
pub struct ClientConfig {
    /// The server, e.g. `http://127.0.0.1:9977`.
    pub endpoint: String,
    /// This client's node id.
    pub node_id: String,
    /// Its role (`<namespace>~<proxyName>`), sent as `node.metadata.role`.
    pub role: String,
    /// Protocol form.
    pub protocol: Protocol,
    /// Type URLs to subscribe to (all resources of each).
    pub types: Vec<String>,
    /// Checks responses before they are accepted.
    pub validator: Validator,
    /// First reconnect delay; doubles up to `max_backoff`.
    pub backoff: Duration,
    /// Longest reconnect delay.
    pub max_backoff: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("protocol", &self.protocol)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A delta client for listeners, routes, clusters and endpoints that accepts everything.
    ///
    /// ```
    /// let config = gloo_xds::client::ClientConfig::new(
    ///     "http://127.0.0.1:9977",
    ///     "proxy-1",
    ///     "gloo-system~gateway-proxy",
    /// );
    /// assert_eq!(config.types.len(), 4);
    /// ```
    pub fn new(
        endpoint: impl Into<String>,
        node_id: impl Into<String>,
        role: impl Into<String>,
    ) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            node_id: node_id.into(),
            role: role.into(),
            protocol: Protocol::Delta,
            types: [CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE]
                .iter()
                .map(|t| t.to_string())
                .collect(),
            validator: Arc::new(|_, _| Ok(())),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// One accepted resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientResource {
    /// Its version as the server sent it (delta), or the response version (state of the
    /// world).
    pub version: String,
    /// The resource (shared: the candidate sets the validator sees copy nothing).
    pub body: Arc<Any>,
}

/// What the client holds: the last accepted resources of each type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientState {
    /// Resources by type URL, then name.
    pub resources: HashMap<String, BTreeMap<String, ClientResource>>,
    /// Whether a stream is up.
    pub connected: bool,
    /// Increases with every accepted change.
    pub generation: u64,
}

/// A running client: read its state; drop it to stop.
#[derive(Debug)]
pub struct AdsClient {
    state: watch::Receiver<Arc<ClientState>>,
    task: tokio::task::JoinHandle<()>,
}

impl AdsClient {
    /// Starts the client on the current tokio runtime.
    pub fn spawn(config: ClientConfig) -> AdsClient {
        let (tx, rx) = watch::channel(Arc::new(ClientState::default()));
        let task = tokio::spawn(run(config, tx));
        AdsClient { state: rx, task }
    }

    /// A receiver of the state, woken on every accepted change and on connects/disconnects.
    pub fn state(&self) -> watch::Receiver<Arc<ClientState>> {
        self.state.clone()
    }
}

impl Drop for AdsClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn node(config: &ClientConfig) -> Node {
    let mut fields = std::collections::HashMap::new();
    fields.insert(
        "role".to_string(),
        Value {
            kind: Some(value::Kind::StringValue(config.role.clone())),
        },
    );
    Node {
        id: config.node_id.clone(),
        metadata: Some(Struct { fields }),
        ..Default::default()
    }
}

async fn run(config: ClientConfig, state: watch::Sender<Arc<ClientState>>) {
    let mut backoff = config.backoff;
    loop {
        let result = match config.protocol {
            Protocol::Delta => run_delta(&config, &state).await,
            Protocol::StateOfTheWorld => run_sotw(&config, &state).await,
        };
        state.send_modify(|s| {
            if s.connected {
                Arc::make_mut(s).connected = false;
            }
        });
        match result {
            // The stream worked for a while: start backing off from the beginning again.
            Ok(()) => backoff = config.backoff,
            Err(err) => {
                tracing::debug!(error = %err, endpoint = %config.endpoint, "xDS connection failed")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(config.max_backoff);
    }
}

fn set_connected(state: &watch::Sender<Arc<ClientState>>) {
    state.send_modify(|s| Arc::make_mut(s).connected = true);
}

/// Applies accepted resources of one type (full replacement when `replace`).
fn accept(
    state: &watch::Sender<Arc<ClientState>>,
    type_url: &str,
    updated: BTreeMap<String, ClientResource>,
    removed: &[String],
    replace: bool,
) {
    state.send_modify(|s| {
        let s = Arc::make_mut(s);
        let entry = s.resources.entry(type_url.to_string()).or_default();
        if replace {
            *entry = updated;
        } else {
            entry.extend(updated);
            for name in removed {
                entry.remove(name);
            }
        }
        s.generation += 1;
    });
}

fn nack(error: String) -> Option<RpcStatus> {
    Some(RpcStatus {
        code: 3, // INVALID_ARGUMENT
        message: error,
        details: Vec::new(),
    })
}

async fn run_delta(
    config: &ClientConfig,
    state: &watch::Sender<Arc<ClientState>>,
) -> Result<(), tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(config.endpoint.clone())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let (tx, requests) = mpsc::channel(16);
    let held = state.borrow().clone();
    for (i, type_url) in config.types.iter().enumerate() {
        // What this client already holds: a reconnect sends only the differences.
        let initial_resource_versions = held
            .resources
            .get(type_url)
            .map(|r| {
                r.iter()
                    .map(|(n, v)| (n.clone(), v.version.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let request = DeltaDiscoveryRequest {
            node: (i == 0).then(|| node(config)),
            type_url: type_url.clone(),
            resource_names_subscribe: vec!["*".to_string()],
            initial_resource_versions,
            ..Default::default()
        };
        tx.send(request)
            .await
            .map_err(|_| tonic::Status::cancelled("request channel closed"))?;
    }
    let mut responses = client
        .delta_aggregated_resources(ReceiverStream::new(requests))
        .await?
        .into_inner();
    set_connected(state);
    while let Some(response) = responses.next().await {
        let response = response?;
        let candidate: BTreeMap<String, Arc<Any>> = {
            let current = state.borrow();
            let mut all: BTreeMap<String, Arc<Any>> = current
                .resources
                .get(&response.type_url)
                .map(|r| r.iter().map(|(n, v)| (n.clone(), v.body.clone())).collect())
                .unwrap_or_default();
            for r in &response.resources {
                if let Some(body) = &r.resource {
                    all.insert(r.name.clone(), Arc::new(body.clone()));
                }
            }
            for name in &response.removed_resources {
                all.remove(name);
            }
            all
        };
        let verdict = (config.validator)(&response.type_url, &candidate);
        let error_detail = match verdict {
            Ok(()) => {
                let updated = response
                    .resources
                    .iter()
                    .filter_map(|r| {
                        let body = candidate.get(&r.name)?.clone();
                        Some((
                            r.name.clone(),
                            ClientResource {
                                version: r.version.clone(),
                                body,
                            },
                        ))
                    })
                    .collect();
                accept(
                    state,
                    &response.type_url,
                    updated,
                    &response.removed_resources,
                    false,
                );
                None
            }
            Err(error) => nack(error),
        };
        let reply = DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail,
            ..Default::default()
        };
        if tx.send(reply).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn run_sotw(
    config: &ClientConfig,
    state: &watch::Sender<Arc<ClientState>>,
) -> Result<(), tonic::Status> {
    let mut client = AggregatedDiscoveryServiceClient::connect(config.endpoint.clone())
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let (tx, requests) = mpsc::channel(16);
    for (i, type_url) in config.types.iter().enumerate() {
        let request = DiscoveryRequest {
            node: (i == 0).then(|| node(config)),
            type_url: type_url.clone(),
            resource_names: vec!["*".to_string()],
            ..Default::default()
        };
        tx.send(request)
            .await
            .map_err(|_| tonic::Status::cancelled("request channel closed"))?;
    }
    let mut responses = client
        .stream_aggregated_resources(ReceiverStream::new(requests))
        .await?
        .into_inner();
    set_connected(state);
    // The version each type last accepted (sent back with every reply, as the protocol asks).
    let mut accepted: HashMap<String, String> = HashMap::new();
    while let Some(response) = responses.next().await {
        let response = response?;
        let candidate: BTreeMap<String, Arc<Any>> = response
            .resources
            .iter()
            .map(|any| (resource_name(any), Arc::new(any.clone())))
            .collect();
        let error_detail = match (config.validator)(&response.type_url, &candidate) {
            Ok(()) => {
                let updated = candidate
                    .into_iter()
                    .map(|(name, body)| {
                        (
                            name,
                            ClientResource {
                                version: response.version_info.clone(),
                                body,
                            },
                        )
                    })
                    .collect();
                accept(state, &response.type_url, updated, &[], true);
                accepted.insert(response.type_url.clone(), response.version_info.clone());
                None
            }
            Err(error) => nack(error),
        };
        let reply = DiscoveryRequest {
            type_url: response.type_url.clone(),
            resource_names: vec!["*".to_string()],
            version_info: accepted
                .get(&response.type_url)
                .cloned()
                .unwrap_or_default(),
            response_nonce: response.nonce.clone(),
            error_detail,
            ..Default::default()
        };
        if tx.send(reply).await.is_err() {
            break;
        }
    }
    Ok(())
}

/// The `name` of an Envoy resource: field 1 of Listener, RouteConfiguration and Cluster;
/// `cluster_name` (also field 1) of ClusterLoadAssignment. Read from the encoding so the
/// client stays independent of the message types.
fn resource_name(any: &Any) -> String {
    let bytes = any.value.as_slice();
    // Field 1, wire type 2 (length-delimited): tag byte 0x0a, then a varint length.
    let mut i = 0;
    while i < bytes.len() {
        let (key, next) = match read_varint(bytes, i) {
            Some(v) => v,
            None => break,
        };
        let (field, wire) = (key >> 3, key & 7);
        i = next;
        match wire {
            0 => match read_varint(bytes, i) {
                Some((_, n)) => i = n,
                None => break,
            },
            1 => i += 8,
            5 => i += 4,
            2 => {
                let Some((len, start)) = read_varint(bytes, i) else {
                    break;
                };
                let end = start.saturating_add(len as usize);
                if end > bytes.len() {
                    break;
                }
                if field == 1 {
                    return String::from_utf8_lossy(&bytes[start..end]).into_owned();
                }
                i = end;
            }
            _ => break,
        }
    }
    String::new()
}

fn read_varint(bytes: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(i)?;
        i += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((value, i));
        }
    }
    None
}
