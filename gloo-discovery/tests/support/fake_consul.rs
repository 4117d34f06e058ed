//! **A FAKE of Consul's HTTP API**, for tests only: no Consul agent ships in any package
//! registry these machines reach, so the tests talk to this instead. It is not Consul and
//! implements only what gloo reads, but what it implements follows Consul's documented
//! behaviour and JSON shapes (api-docs: catalog, health, kv, features/blocking, acl):
//!
//! - `GET /v1/catalog/datacenters` → `["dc1","dc2"]`.
//! - `GET /v1/catalog/services?dc=` → `{"<service>": ["<tag>", ...]}`; every data center has
//!   the `consul` service of its server, as a real cluster does.
//! - `GET /v1/health/service/<name>?dc=` → `[{"Node": {...}, "Service": {...}, "Checks":
//!   [...]}]`, the node's checks (`serfHealth`) and the instance's.
//! - `GET /v1/kv/<prefix>?recurse=true` → `[{"Key","Value"(base64),"Flags","LockIndex",
//!   "CreateIndex","ModifyIndex"}]`, 404 when nothing matches; `PUT` / `DELETE /v1/kv/<key>`.
//! - Each data center is its own Raft cluster: one index per data center, raised by every
//!   write. Answers carry `X-Consul-Index`: for the catalog the services table's index, for a
//!   service the index of its last change (the catalog's when it has no instance), for a KV
//!   prefix the newest write under it, tombstones of deleted keys included (the KV table's
//!   when none); [`FakeConsul::reap_tombstones`] drops tombstones, so a prefix's index can go
//!   backwards, as Consul's docs warn.
//! - Blocking queries: with `index` > 0 the answer waits until the index passes it or `wait`
//!   (default 5m, at most 10m) plus up to `wait/16` of jitter has elapsed.
//! - ACLs (off until [`FakeConsul::enable_acls`]): the token comes from `X-Consul-Token`,
//!   `Authorization: Bearer` or `?token=`; an unknown token is `403 ACL not found`; reads
//!   without permission are filtered out (`X-Consul-Results-Filtered-By-ACLs: true`), writes
//!   are `403 Permission denied: ...`.
//! - Failure injection: [`FakeConsul::stop`] / [`FakeConsul::start`] (connections in flight are
//!   cut), [`FakeConsul::fail_with`] (every request answers that status and body).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What a token may do.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `service:read` / `node:read` on everything.
    pub catalog_read: bool,
    /// `key:read` on everything.
    pub kv_read: bool,
    /// `key:write` on everything.
    pub kv_write: bool,
}

#[derive(Debug, Default)]
struct Instance {
    service: String,
    tags: Vec<String>,
    address: String,
    port: u16,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug)]
struct NodeRec {
    address: String,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug)]
struct Check {
    name: String,
    status: String,
    service_id: String,
    create_index: u64,
    modify_index: u64,
}

#[derive(Debug)]
struct KvEntry {
    value: Vec<u8>,
    create_index: u64,
    modify_index: u64,
}

/// One data center's state (its own Raft log).
#[derive(Debug, Default)]
struct Dc {
    raft: u64,
    /// Index of the services table (any registration change).
    services_index: u64,
    /// Index of each service's last change (instances, their checks, their nodes' checks).
    service_index: BTreeMap<String, u64>,
    nodes: BTreeMap<String, NodeRec>,
    /// (node, service ID) → instance.
    instances: BTreeMap<(String, String), Instance>,
    /// (node, check ID) → check.
    checks: BTreeMap<(String, String), Check>,
    kv: BTreeMap<String, KvEntry>,
    tombstones: BTreeMap<String, u64>,
    kv_index: u64,
}

impl Dc {
    fn next(&mut self) -> u64 {
        self.raft += 1;
        self.raft
    }

    fn ensure_node(&mut self, node: &str, address: &str, index: u64) {
        if !self.nodes.contains_key(node) {
            self.nodes.insert(
                node.to_string(),
                NodeRec {
                    address: address.to_string(),
                    create_index: index,
                    modify_index: index,
                },
            );
            self.checks.insert(
                (node.to_string(), "serfHealth".to_string()),
                Check {
                    name: "Serf Health Status".into(),
                    status: "passing".into(),
                    service_id: String::new(),
                    create_index: index,
                    modify_index: index,
                },
            );
        }
    }

    fn touch_services_on(&mut self, node: &str, index: u64) {
        let names: Vec<String> = self
            .instances
            .iter()
            .filter(|((n, _), _)| n == node)
            .map(|(_, i)| i.service.clone())
            .collect();
        for name in names {
            self.service_index.insert(name, index);
        }
    }

    fn health_index(&self, service: &str) -> u64 {
        let exists = self.instances.values().any(|i| i.service == service);
        match self.service_index.get(service) {
            Some(index) if exists => *index,
            _ => self.services_index.max(1),
        }
    }

    fn kv_prefix_index(&self, prefix: &str) -> u64 {
        let live = self
            .kv
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, e)| e.modify_index)
            .max()
            .unwrap_or(0);
        let dead = self
            .tombstones
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, i)| *i)
            .max()
            .unwrap_or(0);
        match live.max(dead) {
            0 => self.kv_index.max(1),
            index => index,
        }
    }
}

/// Token secret → (accessor ID, policy).
type Tokens = BTreeMap<String, (String, Policy)>;

#[derive(Debug, Default)]
struct State {
    dcs: BTreeMap<String, Dc>,
    /// When ACLs are on: the known tokens (secret → accessor ID, policy) and the anonymous
    /// policy.
    acl: Option<(Tokens, Policy)>,
    failing: Option<(StatusCode, String)>,
}

struct Inner {
    state: Mutex<State>,
    /// Bumped on every write, to wake blocking queries.
    changes: watch::Sender<u64>,
    requests: AtomicU64,
    default_dc: String,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn write<R>(&self, change: impl FnOnce(&mut State) -> R) -> R {
        let out = change(&mut self.lock());
        self.changes.send_modify(|n| *n += 1);
        out
    }
}

/// A FAKE Consul cluster serving its HTTP API on 127.0.0.1 (see the module docs).
pub struct FakeConsul {
    inner: Arc<Inner>,
    addr: SocketAddr,
    server: Mutex<Option<JoinSet<()>>>,
    connections: Arc<Mutex<JoinSet<()>>>,
}

impl FakeConsul {
    /// A fake with data centers `dcs` (the first is the agent's own), each with its server
    /// node `consul-server-<dc>` running the `consul` service, listening on a free port.
    pub async fn start_new(dcs: &[&str]) -> FakeConsul {
        let (changes, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changes,
            requests: AtomicU64::new(0),
            default_dc: dcs.first().copied().unwrap_or("dc1").to_string(),
        });
        for (i, dc) in dcs.iter().enumerate() {
            let node = format!("consul-server-{dc}");
            let address = format!("10.{}.0.1", 100 + i);
            inner.write(|state| {
                let dc = state.dcs.entry(dc.to_string()).or_default();
                let index = dc.next();
                dc.ensure_node(&node, &address, index);
                dc.instances.insert(
                    (node.clone(), "consul".into()),
                    Instance {
                        service: "consul".into(),
                        port: 8300,
                        create_index: index,
                        modify_index: index,
                        ..Default::default()
                    },
                );
                dc.services_index = index;
                dc.service_index.insert("consul".into(), index);
            });
        }
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Consul");
        let addr = listener.local_addr().expect("the fake Consul's address");
        let fake = FakeConsul {
            inner,
            addr,
            server: Mutex::new(None),
            connections: Arc::new(Mutex::new(JoinSet::new())),
        };
        fake.serve(listener);
        fake
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// How many requests were answered so far.
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: TcpListener) {
        let mut tasks = JoinSet::new();
        let inner = self.inner.clone();
        let connections = self.connections.clone();
        tasks.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let inner = inner.clone();
                let mut connections = connections.lock().unwrap();
                while connections.try_join_next().is_some() {}
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let inner = inner.clone();
                        async move { Ok::<_, Infallible>(handle(&inner, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.server.lock().unwrap() = Some(tasks);
    }

    /// Stops serving: the port is closed and every connection (blocking queries in flight
    /// included) is cut before this returns.
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(mut server) = server {
            server.shutdown().await;
        }
        let mut connections = std::mem::take(&mut *self.connections.lock().unwrap());
        connections.shutdown().await;
    }

    /// Serves again on the same port.
    pub async fn start(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(err) if tries < 50 => {
                    tries += 1;
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => panic!("rebind {}: {err}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// Every request, parked blocking queries included, answers `status` with `body` until
    /// [`clear_failure`](Self::clear_failure).
    pub fn fail_with(&self, status: u16, body: &str) {
        self.inner
            .write(|s| s.failing = Some((StatusCode::from_u16(status).unwrap(), body.to_string())));
    }

    /// Ends [`fail_with`](Self::fail_with).
    pub fn clear_failure(&self) {
        self.inner.write(|s| s.failing = None);
    }

    /// Turns ACLs on with default policy deny: `tokens` (secret → policy) are known,
    /// requests without a token get `anonymous`.
    pub fn enable_acls(&self, tokens: &[(&str, Policy)], anonymous: Policy) {
        let tokens = tokens
            .iter()
            .enumerate()
            .map(|(i, (secret, policy))| {
                (
                    secret.to_string(),
                    (
                        format!("00000000-0000-0000-0000-{:012}", i + 1),
                        policy.clone(),
                    ),
                )
            })
            .collect();
        self.inner.write(|s| s.acl = Some((tokens, anonymous)));
    }

    /// Registers (or updates) instance `id` of `service` on `node` in `dc`, with a passing
    /// service check `service:<id>`. An empty `address` means the node's.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &self,
        dc: &str,
        node: &str,
        node_address: &str,
        service: &str,
        id: &str,
        tags: &[&str],
        address: &str,
        port: u16,
    ) {
        self.inner.write(|state| {
            let dc = state.dcs.entry(dc.to_string()).or_default();
            let index = dc.next();
            dc.ensure_node(node, node_address, index);
            let key = (node.to_string(), id.to_string());
            let create_index = dc.instances.get(&key).map_or(index, |i| i.create_index);
            dc.instances.insert(
                key,
                Instance {
                    service: service.to_string(),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    address: address.to_string(),
                    port,
                    create_index,
                    modify_index: index,
                },
            );
            dc.checks
                .entry((node.to_string(), format!("service:{id}")))
                .or_insert(Check {
                    name: format!("Service '{service}' check"),
                    status: "passing".into(),
                    service_id: id.to_string(),
                    create_index: index,
                    modify_index: index,
                });
            dc.services_index = index;
            dc.service_index.insert(service.to_string(), index);
        });
    }

    /// Deregisters instance `id` from `node` in `dc` (and its checks).
    pub fn deregister(&self, dc: &str, node: &str, id: &str) {
        self.inner.write(|state| {
            let dc = state.dcs.entry(dc.to_string()).or_default();
            let index = dc.next();
            if let Some(instance) = dc.instances.remove(&(node.to_string(), id.to_string())) {
                dc.service_index.insert(instance.service, index);
            }
            dc.checks
                .retain(|(n, _), c| !(n == node && c.service_id == id));
            dc.services_index = index;
        });
    }

    /// Sets the status (`passing`, `warning`, `critical`) of a check: `service:<id>` for an
    /// instance's, `serfHealth` for its node's.
    pub fn set_check(&self, dc: &str, node: &str, check_id: &str, status: &str) {
        self.inner.write(|state| {
            let dc = state.dcs.entry(dc.to_string()).or_default();
            let index = dc.next();
            let Some(check) = dc.checks.get_mut(&(node.to_string(), check_id.to_string())) else {
                panic!("no check {check_id} on {node}");
            };
            check.status = status.to_string();
            check.modify_index = index;
            let service_id = check.service_id.clone();
            if service_id.is_empty() {
                dc.touch_services_on(node, index);
            } else if let Some(i) = dc.instances.get(&(node.to_string(), service_id)) {
                let name = i.service.clone();
                dc.service_index.insert(name, index);
            }
        });
    }

    /// Writes a KV entry in the agent's data center.
    pub fn kv_put(&self, key: &str, value: &[u8]) {
        let dc = self.inner.default_dc.clone();
        self.inner.write(|state| kv_put(state, &dc, key, value));
    }

    /// Deletes a KV entry (leaving a tombstone).
    pub fn kv_delete(&self, key: &str) {
        let dc = self.inner.default_dc.clone();
        self.inner.write(|state| kv_delete(state, &dc, key));
    }

    /// Drops every KV tombstone (Consul reaps them after a while), so a prefix whose newest
    /// write was a delete reports a lower index than before.
    pub fn reap_tombstones(&self) {
        self.inner.write(|state| {
            for dc in state.dcs.values_mut() {
                dc.tombstones.clear();
            }
        });
    }

    /// The current index of a KV prefix, as a listing would report it.
    pub fn kv_index(&self, prefix: &str) -> u64 {
        let dc = self.inner.default_dc.clone();
        self.inner
            .lock()
            .dcs
            .get(&dc)
            .map_or(0, |d| d.kv_prefix_index(prefix))
    }
}

fn kv_put(state: &mut State, dc: &str, key: &str, value: &[u8]) {
    let dc = state.dcs.entry(dc.to_string()).or_default();
    let index = dc.next();
    let create_index = dc.kv.get(key).map_or(index, |e| e.create_index);
    dc.kv.insert(
        key.to_string(),
        KvEntry {
            value: value.to_vec(),
            create_index,
            modify_index: index,
        },
    );
    dc.tombstones.remove(key);
    dc.kv_index = index;
}

fn kv_delete(state: &mut State, dc: &str, key: &str) {
    let dc = state.dcs.entry(dc.to_string()).or_default();
    let index = dc.next();
    if dc.kv.remove(key).is_some() {
        dc.tombstones.insert(key.to_string(), index);
    }
    dc.kv_index = index;
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn json_answer(index: u64, value: &Value, filtered: bool) -> Answer {
    let mut response = answer(StatusCode::OK, value.to_string());
    let headers = response.headers_mut();
    headers.insert("Content-Type", "application/json".parse().unwrap());
    headers.insert("X-Consul-Index", index.to_string().parse().unwrap());
    headers.insert("X-Consul-Knownleader", "true".parse().unwrap());
    headers.insert("X-Consul-Lastcontact", "0".parse().unwrap());
    if filtered {
        headers.insert("X-Consul-Results-Filtered-By-ACLs", "true".parse().unwrap());
    }
    response
}

/// Go's `time.ParseDuration` for the forms clients send (`10s`, `1500ms`, `5m`, `1m30s`).
fn parse_wait(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "ns" => number / 1e9,
            "us" | "µs" => number / 1e6,
            "ms" => number / 1e3,
            "s" => number,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return None,
        };
        total += Duration::from_secs_f64(seconds);
        rest = next;
    }
    Some(total)
}

async fn handle(inner: &Inner, request: Request<Incoming>) -> Answer {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query: BTreeMap<String, String> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), percent_decode(v)),
            None => (p.to_string(), String::new()),
        })
        .collect();
    let token = request
        .headers()
        .get("X-Consul-Token")
        .or_else(|| request.headers().get("Authorization"))
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_start_matches("Bearer ").to_string())
        .or_else(|| query.get("token").cloned());
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return answer(StatusCode::BAD_REQUEST, "bad body"),
    };
    if let Some((status, text)) = inner.lock().failing.clone() {
        return answer(status, text);
    }
    let dc = query
        .get("dc")
        .cloned()
        .unwrap_or_else(|| inner.default_dc.clone());
    if path == "/v1/catalog/datacenters" {
        let dcs: Vec<String> = inner.lock().dcs.keys().cloned().collect();
        return json_answer(0, &json!(dcs), false);
    }
    if !inner.lock().dcs.contains_key(&dc) {
        return answer(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter");
    }
    // The token: unknown ones are refused outright.
    let policy = {
        let state = inner.lock();
        match &state.acl {
            None => Policy {
                catalog_read: true,
                kv_read: true,
                kv_write: true,
            },
            Some((tokens, anonymous)) => match token.as_deref().filter(|t| !t.is_empty()) {
                None => anonymous.clone(),
                Some(secret) => match tokens.get(secret) {
                    None => return answer(StatusCode::FORBIDDEN, "ACL not found"),
                    Some((_, policy)) => policy.clone(),
                },
            },
        }
    };
    let accessor = {
        let state = inner.lock();
        match (&state.acl, token.as_deref()) {
            (Some((tokens, _)), Some(secret)) => tokens
                .get(secret)
                .map(|(a, _)| a.clone())
                .unwrap_or_default(),
            _ => "00000000-0000-0000-0000-000000000002".to_string(),
        }
    };
    if let Some(key) = path.strip_prefix("/v1/kv/") {
        let key = percent_decode(key);
        match method {
            Method::PUT | Method::DELETE => {
                if !policy.kv_write {
                    return answer(
                        StatusCode::FORBIDDEN,
                        format!("Permission denied: token with AccessorID '{accessor}' lacks permission 'key:write' on \"{key}\""),
                    );
                }
                if method == Method::PUT {
                    inner.write(|s| kv_put(s, &dc, &key, &body));
                } else {
                    inner.write(|s| kv_delete(s, &dc, &key));
                }
                return json_answer(0, &json!(true), false);
            }
            Method::GET => {}
            _ => return answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }
    if method != Method::GET {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let min_index: u64 = match query.get("index").map(|i| i.parse()) {
        None => 0,
        Some(Ok(index)) => index,
        Some(Err(_)) => return answer(StatusCode::BAD_REQUEST, "Invalid index"),
    };
    let wait = match query.get("wait") {
        None => Duration::from_secs(300),
        Some(text) => match parse_wait(text) {
            Some(wait) => wait.min(Duration::from_secs(600)),
            None => return answer(StatusCode::BAD_REQUEST, "Invalid wait time"),
        },
    };
    // Consul adds up to wait/16 of jitter to spread wake-ups.
    let jitter = Duration::from_nanos(fastrand::u64(0..=(wait.as_nanos() / 16) as u64));
    let deadline = tokio::time::Instant::now() + wait + jitter;
    let mut changes = inner.changes.subscribe();
    loop {
        changes.borrow_and_update();
        let read = {
            let state = inner.lock();
            // Failure injection reaches parked blocking queries too.
            if let Some((status, text)) = state.failing.clone() {
                return answer(status, text);
            }
            let Some(dcs) = state.dcs.get(&dc) else {
                return answer(StatusCode::INTERNAL_SERVER_ERROR, "No path to datacenter");
            };
            read(dcs, &dc, &path, &query, &policy)
        };
        let (index, value, filtered) = match read {
            Read::Found(index, value, filtered) => (index, Some(value), filtered),
            Read::NotFound(index) => (index, None, false),
            Read::Bad(status, text) => return answer(status, text),
        };
        let blocked = min_index > 0 && index <= min_index;
        if !blocked || tokio::time::Instant::now() >= deadline {
            return match value {
                Some(value) => json_answer(index, &value, filtered),
                None => {
                    let mut response = answer(StatusCode::NOT_FOUND, "");
                    response
                        .headers_mut()
                        .insert("X-Consul-Index", index.to_string().parse().unwrap());
                    response
                }
            };
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

enum Read {
    Found(u64, Value, bool),
    NotFound(u64),
    Bad(StatusCode, String),
}

fn read(
    dc: &Dc,
    dc_name: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    policy: &Policy,
) -> Read {
    if path == "/v1/catalog/services" {
        let mut services: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        if policy.catalog_read {
            for instance in dc.instances.values() {
                let tags = services.entry(&instance.service).or_default();
                for tag in &instance.tags {
                    if !tags.contains(&tag.as_str()) {
                        tags.push(tag);
                    }
                }
            }
        }
        let filtered = !policy.catalog_read && !dc.instances.is_empty();
        return Read::Found(dc.services_index.max(1), json!(services), filtered);
    }
    if let Some(service) = path.strip_prefix("/v1/health/service/") {
        let service = percent_decode(service);
        let index = dc.health_index(&service);
        let mut entries = Vec::new();
        for ((node, id), instance) in &dc.instances {
            if instance.service != service || !policy.catalog_read {
                continue;
            }
            let Some(node_rec) = dc.nodes.get(node) else {
                continue;
            };
            let checks: Vec<Value> = dc
                .checks
                .iter()
                .filter(|((n, _), c)| n == node && (c.service_id.is_empty() || &c.service_id == id))
                .map(|((n, check_id), c)| {
                    json!({
                        "Node": n, "CheckID": check_id, "Name": c.name, "Status": c.status,
                        "Notes": "", "Output": "", "ServiceID": c.service_id,
                        "ServiceName": if c.service_id.is_empty() { "" } else { service.as_str() },
                        "ServiceTags": if c.service_id.is_empty() { Vec::new() } else { instance.tags.clone() },
                        "Type": if c.service_id.is_empty() { "" } else { "ttl" },
                        "Interval": "", "Timeout": "", "ExposedPort": 0,
                        "Definition": {}, "CreateIndex": c.create_index, "ModifyIndex": c.modify_index,
                    })
                })
                .collect();
            entries.push(json!({
                "Node": {
                    "ID": "", "Node": node, "Address": node_rec.address, "Datacenter": dc_name,
                    "TaggedAddresses": {"lan": node_rec.address, "wan": node_rec.address},
                    "Meta": {"consul-network-segment": ""},
                    "CreateIndex": node_rec.create_index, "ModifyIndex": node_rec.modify_index,
                },
                "Service": {
                    "ID": id, "Service": instance.service, "Tags": instance.tags,
                    "Address": instance.address, "Meta": null, "Port": instance.port,
                    "Weights": {"Passing": 1, "Warning": 1}, "EnableTagOverride": false,
                    "Proxy": {"Mode": "", "MeshGateway": {}, "Expose": {}}, "Connect": {},
                    "PeerName": "",
                    "CreateIndex": instance.create_index, "ModifyIndex": instance.modify_index,
                },
                "Checks": checks,
            }));
        }
        let filtered = !policy.catalog_read && dc.instances.values().any(|i| i.service == service);
        return Read::Found(index, Value::Array(entries), filtered);
    }
    if let Some(key) = path.strip_prefix("/v1/kv/") {
        let key = percent_decode(key);
        let recurse = query.contains_key("recurse");
        let index = if recurse {
            dc.kv_prefix_index(&key)
        } else {
            dc.kv
                .get(&key)
                .map_or(dc.kv_index.max(1), |e| e.modify_index)
        };
        let entries: Vec<Value> = dc
            .kv
            .iter()
            .filter(|(k, _)| {
                if recurse {
                    k.starts_with(&key)
                } else {
                    **k == key
                }
            })
            .filter(|_| policy.kv_read)
            .map(|(k, e)| {
                json!({
                    "LockIndex": 0, "Key": k, "Flags": 0,
                    "Value": if e.value.is_empty() { Value::Null } else {
                        Value::String(base64::engine::general_purpose::STANDARD.encode(&e.value))
                    },
                    "CreateIndex": e.create_index, "ModifyIndex": e.modify_index,
                })
            })
            .collect();
        if entries.is_empty() {
            return Read::NotFound(index);
        }
        return Read::Found(index, Value::Array(entries), false);
    }
    Read::Bad(
        StatusCode::NOT_FOUND,
        format!("no such endpoint in the fake: {path}"),
    )
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
