//! A FAKE Kubernetes API server, for tests only. It is not kube-apiserver: no authentication,
//! admission, validation against schemas, defaulting, garbage collection, namespaces that must
//! exist, server-side apply, strategic merge (treated as a JSON merge patch), JSON patch, or
//! Table output. What it does do follows the API conventions real clients rely on, and its wire
//! format is checked against kubectl, the Python `kubernetes` client and kube-rs
//! (tests/kubernetes_fake_apiserver.rs):
//!
//! - objects of any group/version/kind registered with [`ResourceType`] (core Services, Pods,
//!   Secrets, Namespaces, Events; discovery EndpointSlices; networking Ingresses; Gloo's CRDs by
//!   default), namespaced or cluster-scoped, with or without a `status` subresource;
//! - one global, increasing `resourceVersion` (like etcd's revision): every write bumps it and
//!   stamps the object, `uid`, `creationTimestamp` and, for custom resources, `generation`
//!   (bumped when anything but metadata and status changes);
//! - list (`kind: <Kind>List`, `metadata.resourceVersion`; items of built-in kinds without
//!   `apiVersion`/`kind`, as the real server encodes typed lists), with `limit` / `continue`
//!   pages that are a consistent snapshot, `resourceVersion` + `resourceVersionMatch=Exact`;
//! - watch (`?watch=true`): `ADDED` / `MODIFIED` / `DELETED` events after the given
//!   `resourceVersion` (without one: synthetic `ADDED` for what exists, then changes), an object
//!   leaving a label selector arrives as `DELETED`, `BOOKMARK` events with
//!   `allowWatchBookmarks=true`, `timeoutSeconds` ends the stream;
//! - `410 Gone`: a watch from a `resourceVersion` older than the last [`compact`](FakeApiServer::compact)
//!   gets an `ERROR` event with a `Status` (`reason: Expired`, `code: 410`) and ends, as the real
//!   server answers; a list at such a version, or an old `continue` token, answers HTTP 410;
//! - `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`) and `fieldSelector`
//!   (`metadata.name`, `metadata.namespace`; `=`, `==`, `!=`);
//! - create (POST, `409 AlreadyExists`), replace (PUT, `409 Conflict` on a stale
//!   `resourceVersion`), JSON merge patch (PATCH), delete; the `status` subresource (GET, PUT,
//!   PATCH) for types that have one, where writes to the main resource keep the status and
//!   writes to `/status` change only the status; `404 NotFound` for a type without one;
//! - discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`;
//! - test controls: an outage (connections cut and refused, then served again on the same
//!   port), break every watch, compact the history, and a log of the requests received.

#![allow(dead_code)]
// A handler's early answer is an HTTP response: large, and only in this test server.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// One kind of object the fake serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group (`""` for core).
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind (`Service`).
    pub kind: String,
    /// Plural resource name (`services`).
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Whether the type has a `status` subresource.
    pub status_subresource: bool,
    /// Built-in kinds are encoded without `apiVersion`/`kind` in list items, and have no
    /// `generation`.
    pub builtin: bool,
}

impl ResourceType {
    /// A namespaced type.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced: true,
            status_subresource: false,
            builtin: false,
        }
    }

    fn builtin(mut self) -> Self {
        self.builtin = true;
        self
    }

    /// `v1` or `<group>/<version>`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn key(&self) -> String {
        format!("{}/{}/{}", self.group, self.version, self.plural)
    }
}

/// The types a fake serves unless told otherwise: what gloo's Kubernetes integration reads,
/// with the status subresources of Gloo's CRD manifests (only RateLimitConfig has one).
pub fn default_types() -> Vec<ResourceType> {
    // Built-in kinds, with whether they have a status subresource and are namespaced.
    let builtin = [
        ("", "Service", "services", true, true),
        ("", "Pod", "pods", true, true),
        ("", "Secret", "secrets", false, true),
        ("", "ConfigMap", "configmaps", false, true),
        // What controllers report problems with (gloo: an Ingress it cannot serve in full).
        ("", "Event", "events", false, true),
        ("", "Namespace", "namespaces", true, false),
        (
            "discovery.k8s.io",
            "EndpointSlice",
            "endpointslices",
            false,
            true,
        ),
        ("networking.k8s.io", "Ingress", "ingresses", true, true),
    ];
    // Gloo's CRDs, as their manifests declare them.
    let crds = [
        ("gateway.solo.io", "v1", "Gateway", "gateways"),
        ("gateway.solo.io", "v1", "VirtualService", "virtualservices"),
        ("gateway.solo.io", "v1", "RouteTable", "routetables"),
        (
            "gateway.solo.io",
            "v1",
            "VirtualHostOption",
            "virtualhostoptions",
        ),
        ("gateway.solo.io", "v1", "RouteOption", "routeoptions"),
        ("gloo.solo.io", "v1", "Upstream", "upstreams"),
        ("gloo.solo.io", "v1", "UpstreamGroup", "upstreamgroups"),
        ("gloo.solo.io", "v1", "Settings", "settings"),
        ("enterprise.gloo.solo.io", "v1", "AuthConfig", "authconfigs"),
        (
            "ratelimit.solo.io",
            "v1alpha1",
            "RateLimitConfig",
            "ratelimitconfigs",
        ),
    ];
    let builtin = builtin
        .into_iter()
        .map(|(group, kind, plural, status, namespaced)| {
            let mut t = ResourceType::new(group, "v1", kind, plural).builtin();
            t.status_subresource = status;
            t.namespaced = namespaced;
            t
        });
    let crds = crds.into_iter().map(|(group, version, kind, plural)| {
        let mut t = ResourceType::new(group, version, kind, plural);
        t.status_subresource = kind == "RateLimitConfig";
        t
    });
    builtin.chain(crds).collect()
}

/// (type key, namespace, name).
type Key = (String, String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Modified,
    Deleted,
}

#[derive(Debug, Clone)]
struct LogEntry {
    revision: u64,
    key: Key,
    change: Change,
    /// The object after the change (for a delete: as it was, with the delete's revision).
    object: Value,
    /// The object before the change (for selector transitions).
    previous: Option<Value>,
}

struct Watcher {
    id: u64,
    type_key: String,
    namespace: Option<String>,
    labels: Selector,
    fields: Vec<FieldRequirement>,
    tx: mpsc::UnboundedSender<Bytes>,
}

struct State {
    types: Vec<ResourceType>,
    revision: u64,
    objects: BTreeMap<Key, Value>,
    /// The objects as of `compacted` (the base the log applies to).
    base: BTreeMap<Key, Value>,
    /// Revisions older than this are gone: watching or listing from them is `410 Gone`.
    compacted: u64,
    log: Vec<LogEntry>,
    watchers: Vec<Watcher>,
    requests: Vec<String>,
    uid: u64,
    next_watch: u64,
}

/// The fake API server.
pub struct FakeApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Mutex<Option<JoinHandle<()>>>,
    /// While set, connections are closed as soon as they are accepted (an outage).
    down: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    bookmark_interval: Duration,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    match state.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl FakeApiServer {
    /// Starts a fake on a free loopback port, serving [`default_types`].
    pub async fn start() -> Arc<Self> {
        Self::start_with(default_types(), Duration::from_millis(500)).await
    }

    /// Starts a fake serving `types`, sending watch bookmarks every `bookmark_interval`.
    pub async fn start_with(types: Vec<ResourceType>, bookmark_interval: Duration) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let server = Arc::new(FakeApiServer {
            addr,
            state: Arc::new(Mutex::new(State {
                types,
                revision: 1,
                objects: BTreeMap::new(),
                base: BTreeMap::new(),
                compacted: 1,
                log: Vec::new(),
                watchers: Vec::new(),
                requests: Vec::new(),
                uid: 0,
                next_watch: 0,
            })),
            server: Mutex::new(None),
            down: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Mutex::new(Vec::new())),
            bookmark_interval,
        });
        server.serve(listener);
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube-rs client of this fake.
    pub fn client(&self) -> gloo_discovery::kubernetes::kube::Client {
        use gloo_discovery::kubernetes::kube;
        let uri: http::Uri = self.url().parse().expect("fake URL");
        kube::Client::try_from(kube::Config::new(uri)).expect("kube client")
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let interval = self.bookmark_interval;
        let down = self.down.clone();
        let connections = self.connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Checked and registered under the lock `stop` takes, so no connection slips
                // through an outage.
                let mut all = connections.lock().unwrap_or_else(|p| p.into_inner());
                if down.load(Ordering::SeqCst) {
                    drop(stream);
                    continue;
                }
                let state = state.clone();
                let connection = tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, request, interval).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
                all.retain(|c| !c.is_finished());
                all.push(connection);
            }
        });
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// An outage: every connection (and watch) is cut, and new connections are closed as soon as
    /// they are accepted. The port stays bound (so no other test's server can take it, and the
    /// same address serves again on [`resume`](Self::resume)); state is kept.
    pub async fn stop(&self) {
        let cut: Vec<JoinHandle<()>> = {
            let mut all = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            self.down.store(true, Ordering::SeqCst);
            std::mem::take(&mut *all)
        };
        for connection in &cut {
            connection.abort();
        }
        for connection in cut {
            let _ = connection.await;
        }
        lock(&self.state).watchers.clear();
    }

    /// Serves again, with the state it had.
    pub async fn resume(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Ends every open watch (clients resume from their last resource version).
    pub fn break_watches(&self) {
        lock(&self.state).watchers.clear();
    }

    /// Forgets the history: watching or listing from an older resource version is `410 Gone`.
    pub fn compact(&self) {
        let mut state = lock(&self.state);
        state.compacted = state.revision;
        state.base = state.objects.clone();
        state.log.clear();
    }

    /// The current resource version.
    pub fn revision(&self) -> u64 {
        lock(&self.state).revision
    }

    /// Every request received, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state).requests.clone()
    }

    /// Creates or replaces an object (its `apiVersion`, `kind`, `metadata.name` and, for a
    /// namespaced kind, `metadata.namespace` say where). Returns the stored object.
    pub fn apply(&self, object: Value) -> Value {
        let mut state = lock(&self.state);
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let ty = state
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
            .unwrap_or_else(|| panic!("the fake does not serve {api_version} {kind}"));
        let namespace = if ty.namespaced {
            object["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = (ty.key(), namespace, name);
        let existing = state.objects.get(&key).cloned();
        match existing {
            None => state.create(&ty, key, object),
            Some(old) => state.replace(&ty, key, old, object, true, true),
        }
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> bool {
        let mut state = lock(&self.state);
        let Some(ty) = state
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
        else {
            return false;
        };
        let key = (ty.key(), namespace.to_string(), name.to_string());
        state.remove(key).is_some()
    }

    /// An object as stored.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let state = lock(&self.state);
        let ty = state
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)?;
        state
            .objects
            .get(&(ty.key(), namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Every stored object of a kind, in namespace and name order.
    pub fn list(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let state = lock(&self.state);
        let Some(ty) = state
            .types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
        else {
            return Vec::new();
        };
        let type_key = ty.key();
        state
            .objects
            .iter()
            .filter(|((t, _, _), _)| *t == type_key)
            .map(|(_, object)| object.clone())
            .collect()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
        for connection in self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            connection.abort();
        }
    }
}

/// An RFC 3339 UTC timestamp of now, second precision.
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

impl State {
    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    fn create(&mut self, ty: &ResourceType, key: Key, mut object: Value) -> Value {
        let revision = self.next_revision();
        self.uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.uid);
        let meta = metadata_mut(&mut object);
        meta.insert("name".into(), json!(key.2));
        if ty.namespaced {
            meta.insert("namespace".into(), json!(key.1));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(uid));
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        if !ty.builtin {
            meta.insert("generation".into(), json!(1));
        }
        object["apiVersion"] = json!(ty.api_version());
        object["kind"] = json!(ty.kind);
        self.objects.insert(key.clone(), object.clone());
        self.record(revision, key, Change::Added, object.clone(), None);
        object
    }

    /// Replaces `old` with `new`. `main`: a write to the resource (keeps the status of a type
    /// with a status subresource); `status`: a write to the status (changes only the status).
    fn replace(
        &mut self,
        ty: &ResourceType,
        key: Key,
        old: Value,
        mut new: Value,
        main: bool,
        status: bool,
    ) -> Value {
        if ty.status_subresource && main && !status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
        }
        if ty.status_subresource && status && !main {
            let mut only_status = old.clone();
            match new.get("status") {
                Some(s) => only_status["status"] = s.clone(),
                None => {
                    if let Some(o) = only_status.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            new = only_status;
        }
        // Server-owned metadata stays the server's.
        let old_meta = old["metadata"].clone();
        let meta = metadata_mut(&mut new);
        for field in ["uid", "creationTimestamp", "name", "namespace"] {
            match old_meta.get(field) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        new["apiVersion"] = json!(ty.api_version());
        new["kind"] = json!(ty.kind);
        if !ty.builtin {
            let generation = old_meta["generation"].as_i64().unwrap_or(1);
            let changed = strip_meta_status(&old) != strip_meta_status(&new);
            new["metadata"]["generation"] =
                json!(if changed { generation + 1 } else { generation });
        }
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"].clone();
        if new == old {
            return old; // a no-op write does not bump the resource version
        }
        let revision = self.next_revision();
        new["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.objects.insert(key.clone(), new.clone());
        self.record(revision, key, Change::Modified, new.clone(), Some(old));
        new
    }

    fn remove(&mut self, key: Key) -> Option<Value> {
        let old = self.objects.remove(&key)?;
        let revision = self.next_revision();
        let mut gone = old.clone();
        gone["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.record(revision, key, Change::Deleted, gone.clone(), Some(old));
        Some(gone)
    }

    fn record(
        &mut self,
        revision: u64,
        key: Key,
        change: Change,
        object: Value,
        previous: Option<Value>,
    ) {
        let entry = LogEntry {
            revision,
            key,
            change,
            object,
            previous,
        };
        let types = self.types.clone();
        self.watchers.retain(|w| {
            if w.tx.is_closed() {
                return false;
            }
            match event_for(w, &entry, &types) {
                Some(frame) => w.tx.send(frame).is_ok(),
                None => true,
            }
        });
        self.log.push(entry);
    }

    fn type_by_path(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The objects of one type as of `revision` (`None`: now), or `None` if that revision was
    /// compacted away.
    fn objects_at(&self, revision: Option<u64>) -> Option<BTreeMap<Key, Value>> {
        let Some(revision) = revision.filter(|r| *r < self.revision) else {
            return Some(self.objects.clone());
        };
        if revision < self.compacted {
            return None;
        }
        let mut objects = self.base.clone();
        for entry in self.log.iter().take_while(|e| e.revision <= revision) {
            match entry.change {
                Change::Deleted => {
                    objects.remove(&entry.key);
                }
                _ => {
                    objects.insert(entry.key.clone(), entry.object.clone());
                }
            }
        }
        Some(objects)
    }
}

fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    match object["metadata"].as_object_mut() {
        Some(m) => m,
        None => unreachable!("metadata was just made an object"),
    }
}

fn strip_meta_status(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    o
}

/// The watch event a log entry is for a watcher, if any.
fn event_for(w: &Watcher, entry: &LogEntry, types: &[ResourceType]) -> Option<Bytes> {
    if entry.key.0 != w.type_key {
        return None;
    }
    if w.namespace.as_deref().is_some_and(|ns| ns != entry.key.1) {
        return None;
    }
    let matches = |o: &Value| w.labels.matches(o) && fields_match(&w.fields, o);
    let now = entry.change != Change::Deleted && matches(&entry.object);
    let before = entry.previous.as_ref().is_some_and(matches);
    let kind = match (entry.change, before, now) {
        (Change::Deleted, true, _) => "DELETED",
        (Change::Deleted, false, _) => return None,
        (_, false, true) => "ADDED",
        (_, true, true) => "MODIFIED",
        // Left the selection: the real server sends DELETED with the new object.
        (_, true, false) => "DELETED",
        (_, false, false) => return None,
    };
    let _ = types;
    Some(frame(kind, &entry.object))
}

fn frame(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

// ---- selectors ----

#[derive(Debug, Clone, Default)]
struct Selector(Vec<Requirement>);

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(text: &str) -> Result<Selector, String> {
        let mut parts = Vec::new();
        let mut depth = 0;
        let mut current = String::new();
        for c in text.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        parts.push(current);
        let mut out = Vec::new();
        for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let set = |rest: &str| -> Result<BTreeSet<String>, String> {
                let rest = rest.trim();
                let inner = rest
                    .strip_prefix('(')
                    .and_then(|r| r.strip_suffix(')'))
                    .ok_or_else(|| format!("invalid set in {part:?}"))?;
                Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
            };
            let requirement = if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set(rest)?)
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().into())
            } else {
                Requirement::Exists(part.into())
            };
            out.push(requirement);
        }
        Ok(Selector(out))
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

#[derive(Debug, Clone)]
struct FieldRequirement {
    field: String,
    value: String,
    equal: bool,
}

fn parse_fields(text: &str) -> Result<Vec<FieldRequirement>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = part.split_once('=') {
            (f, v, true)
        } else {
            return Err(format!("invalid field selector {part:?}"));
        };
        if field != "metadata.name" && field != "metadata.namespace" {
            return Err(format!("field label not supported: {field}"));
        }
        out.push(FieldRequirement {
            field: field.into(),
            value: value.into(),
            equal,
        });
    }
    Ok(out)
}

fn fields_match(fields: &[FieldRequirement], object: &Value) -> bool {
    fields.iter().all(|f| {
        let path = f.field.trim_start_matches("metadata.");
        let actual = object["metadata"][path].as_str().unwrap_or_default();
        (actual == f.value) == f.equal
    })
}

// ---- HTTP ----

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn status_error(code: StatusCode, reason: &str, message: impl Into<String>) -> Response<Body> {
    full(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message.into(),
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

fn query_map(query: Option<&str>) -> BTreeMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    state: &Arc<Mutex<State>>,
    request: Request<Incoming>,
    bookmarks: Duration,
) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = query_map(request.uri().query());
    lock(state).requests.push(format!(
        "{method} {}",
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    ));
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match request.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => full(
            StatusCode::OK,
            &json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-fake", "platform": "linux/amd64"}),
        ),
        ["api"] => full(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ["apis"] => full(StatusCode::OK, &group_list(&lock(state).types)),
        ["api", version, rest @ ..] => resource_request(
            state,
            "",
            version,
            rest,
            &method,
            &query,
            &content_type,
            &body,
            bookmarks,
        ),
        ["apis", group, version, rest @ ..] => resource_request(
            state,
            group,
            version,
            rest,
            &method,
            &query,
            &content_type,
            &body,
            bookmarks,
        ),
        _ => status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        ),
    }
}

fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        groups.entry(&t.group).or_default().insert(&t.version);
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({"name": group, "versions": versions, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let mine: Vec<&ResourceType> = types
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let verbs = json!(["create", "delete", "get", "list", "patch", "update", "watch"]);
    let mut resources = Vec::new();
    for t in mine {
        resources.push(json!({"name": t.plural, "singularName": t.kind.to_lowercase(), "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs}));
        if t.status_subresource {
            resources.push(json!({"name": format!("{}/status", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}));
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

#[allow(clippy::too_many_arguments)]
fn resource_request(
    state: &Arc<Mutex<State>>,
    group: &str,
    version: &str,
    rest: &[&str],
    method: &Method,
    query: &BTreeMap<String, String>,
    content_type: &str,
    body: &Bytes,
    bookmarks: Duration,
) -> Response<Body> {
    let not_found = || {
        status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    };
    if rest.is_empty() {
        return match resource_list(&lock(state).types, group, version) {
            Some(list) => full(StatusCode::OK, &list),
            None => not_found(),
        };
    }
    // namespaces/<ns>/<plural>[/<name>[/<sub>]] or <plural>[/<name>[/<sub>]]
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !tail.is_empty()
                || lock(state)
                    .type_by_path(group, version, plural)
                    .is_some_and(|t| t.namespaced) =>
        {
            (
                Some(ns.to_string()),
                *plural,
                tail.first().copied(),
                tail.get(1).copied(),
            )
        }
        [plural, tail @ ..] => (None, *plural, tail.first().copied(), tail.get(1).copied()),
        [] => return not_found(),
    };
    let Some(ty) = lock(state).type_by_path(group, version, plural) else {
        return not_found();
    };
    if !ty.namespaced && namespace.is_some() {
        return not_found();
    }
    if let Some(sub) = sub {
        if sub != "status" || !ty.status_subresource {
            return not_found();
        }
    }
    match (method, name) {
        (&Method::GET, None) => {
            let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
            if watch {
                start_watch(state, &ty, namespace, query, bookmarks)
            } else {
                list(state, &ty, namespace.as_deref(), query)
            }
        }
        (&Method::POST, None) => {
            let Some(ns) = namespace
                .clone()
                .or_else(|| (!ty.namespaced).then(String::new))
            else {
                return not_found();
            };
            let object = match parse_body(body) {
                Ok(v) => v,
                Err(response) => return response,
            };
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if name.is_empty() {
                return status_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "metadata.name: Required value",
                );
            }
            let mut state = lock(state);
            let key = (ty.key(), ns, name.clone());
            if state.objects.contains_key(&key) {
                return status_error(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    format!("{} \"{name}\" already exists", ty.plural),
                );
            }
            let created = state.create(&ty, key, object);
            full(StatusCode::CREATED, &created)
        }
        (method, Some(name)) => {
            let ns = namespace.unwrap_or_default();
            let key = (ty.key(), ns, name.to_string());
            let mut state = lock(state);
            let Some(existing) = state.objects.get(&key).cloned() else {
                return status_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{}.{} \"{name}\" not found", ty.plural, ty.group),
                );
            };
            let on_status = sub == Some("status");
            match *method {
                Method::GET => full(StatusCode::OK, &existing),
                Method::PUT | Method::PATCH => {
                    let new = if *method == Method::PUT {
                        let new = match parse_body(body) {
                            Ok(v) => v,
                            Err(response) => return response,
                        };
                        let sent = new["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default();
                        let current = existing["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default();
                        if !sent.is_empty() && sent != current {
                            return status_error(StatusCode::CONFLICT, "Conflict", format!("Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again", ty.plural));
                        }
                        new
                    } else {
                        let media = content_type.split(';').next().unwrap_or_default().trim();
                        if media != "application/merge-patch+json"
                            && media != "application/strategic-merge-patch+json"
                        {
                            return status_error(
                                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                                "UnsupportedMediaType",
                                format!("the fake API server does not support patch type {media}"),
                            );
                        }
                        let patch = match parse_body(body) {
                            Ok(v) => v,
                            Err(response) => return response,
                        };
                        let mut merged = existing.clone();
                        merge_patch(&mut merged, &patch);
                        merged
                    };
                    let updated = if ty.status_subresource {
                        state.replace(&ty, key, existing, new, !on_status, on_status)
                    } else {
                        state.replace(&ty, key, existing, new, true, true)
                    };
                    full(StatusCode::OK, &updated)
                }
                Method::DELETE => match state.remove(key) {
                    Some(gone) => full(StatusCode::OK, &gone),
                    None => not_found(),
                },
                _ => status_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "method not allowed",
                ),
            }
        }
        _ => status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "method not allowed",
        ),
    }
}

/// A request body as JSON, or the `400 BadRequest` answer.
fn parse_body(body: &Bytes) -> Result<Value, Response<Body>> {
    serde_json::from_slice(body).map_err(|e| {
        status_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("invalid JSON: {e}"),
        )
    })
}

/// The `labelSelector` and `fieldSelector` of a request, or the `400 BadRequest` answer.
fn selectors(
    query: &BTreeMap<String, String>,
) -> Result<(Selector, Vec<FieldRequirement>), Response<Body>> {
    let bad = |e: String| status_error(StatusCode::BAD_REQUEST, "BadRequest", e);
    let labels = Selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(bad)?;
    let fields =
        parse_fields(query.get("fieldSelector").map(String::as_str).unwrap_or("")).map_err(bad)?;
    Ok((labels, fields))
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(map) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn gone(message: impl Into<String>) -> Response<Body> {
    status_error(StatusCode::GONE, "Expired", message)
}

fn list(
    state: &Arc<Mutex<State>>,
    ty: &ResourceType,
    namespace: Option<&str>,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let state = lock(state);
    // A continue token: the revision of the first page and the last key served.
    let (revision, after) = match query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => match decode_continue(token) {
            Some((rev, after)) => (Some(rev), Some(after)),
            None => {
                return status_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "invalid continue token",
                )
            }
        },
        None => {
            let rv = query
                .get("resourceVersion")
                .filter(|v| !v.is_empty() && *v != "0");
            let exact = query.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
            match rv.map(|v| v.parse::<u64>()) {
                Some(Err(_)) => {
                    return status_error(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        "invalid resourceVersion",
                    )
                }
                Some(Ok(rv)) if rv > state.revision => {
                    return status_error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "Timeout",
                        format!(
                            "Too large resource version: {rv}, current: {}",
                            state.revision
                        ),
                    )
                }
                Some(Ok(rv)) if exact => (Some(rv), None),
                // NotOlderThan (or unset with a version): the newest state is not older.
                _ => (None, None),
            }
        }
    };
    let Some(objects) = state.objects_at(revision) else {
        return gone(format!(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. (resourceVersion {} is older than {})",
            revision.unwrap_or_default(),
            state.compacted
        ));
    };
    let list_revision = revision.unwrap_or(state.revision);
    let limit: usize = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let type_key = ty.key();
    let mut items = Vec::new();
    let mut more = false;
    for ((t, ns, name), object) in &objects {
        if *t != type_key || namespace.is_some_and(|n| n != ns) {
            continue;
        }
        if after.as_ref().is_some_and(|a| (ns, name) <= (&a.0, &a.1)) {
            continue;
        }
        if !labels.matches(object) || !fields_match(&fields, object) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        let mut item = object.clone();
        if ty.builtin {
            if let Some(map) = item.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
            }
        }
        items.push(item);
    }
    let mut metadata = json!({"resourceVersion": list_revision.to_string()});
    if more {
        if let Some(last) = items.last() {
            let ns = last["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = last["metadata"]["name"].as_str().unwrap_or_default();
            metadata["continue"] = json!(encode_continue(list_revision, ns, name));
        }
    }
    full(
        StatusCode::OK,
        &json!({"kind": format!("{}List", ty.kind), "apiVersion": ty.api_version(), "metadata": metadata, "items": items}),
    )
}

fn encode_continue(revision: u64, namespace: &str, name: &str) -> String {
    format!("{revision}:{namespace}:{name}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, ':');
    let revision = parts.next()?.parse().ok()?;
    Some((
        revision,
        (parts.next()?.to_string(), parts.next()?.to_string()),
    ))
}

fn start_watch(
    state: &Arc<Mutex<State>>,
    ty: &ResourceType,
    namespace: Option<String>,
    query: &BTreeMap<String, String>,
    bookmark_interval: Duration,
) -> Response<Body> {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(response) => return response,
    };
    let bookmarks = matches!(
        query.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let from = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse::<u64>());
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let id = {
        let mut guard = lock(state);
        guard.next_watch += 1;
        guard.next_watch
    };
    let watcher = Watcher {
        id,
        type_key: ty.key(),
        namespace,
        labels,
        fields,
        tx: tx.clone(),
    };
    {
        let mut guard = lock(state);
        match from {
            Some(Err(_)) => {
                return status_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "invalid resourceVersion",
                )
            }
            Some(Ok(rv)) if rv < guard.compacted => {
                // As kube-apiserver: the watch is opened, then an ERROR event says it expired.
                let status = json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": format!("too old resource version: {rv} ({})", guard.compacted),
                    "reason": "Expired", "code": 410,
                });
                let _ = tx.send(frame("ERROR", &status));
                drop(tx);
                drop(watcher);
                return streaming(rx, None);
            }
            Some(Ok(rv)) => {
                // Replay what happened after `rv`.
                let types = guard.types.clone();
                for entry in guard.log.iter().filter(|e| e.revision > rv) {
                    if let Some(f) = event_for(&watcher, entry, &types) {
                        let _ = tx.send(f);
                    }
                }
            }
            None => {
                // No version: the current objects as ADDED, then changes.
                for ((t, ns, _), object) in &guard.objects {
                    if *t == watcher.type_key
                        && watcher.namespace.as_ref().is_none_or(|n| n == ns)
                        && watcher.labels.matches(object)
                        && fields_match(&watcher.fields, object)
                    {
                        let _ = tx.send(frame("ADDED", object));
                    }
                }
            }
        }
        guard.watchers.push(watcher);
    }
    if bookmarks {
        // Sent through the watcher's own sender, under the lock, so a bookmark never overtakes
        // an event; ends when the watch does.
        let state = state.clone();
        let (api_version, kind) = (ty.api_version(), ty.kind.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(bookmark_interval).await;
                let guard = lock(&state);
                let Some(w) = guard.watchers.iter().find(|w| w.id == id) else {
                    return;
                };
                let bookmark = json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": guard.revision.to_string()}});
                if w.tx.send(frame("BOOKMARK", &bookmark)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    streaming(rx, timeout)
}

/// A chunked JSON stream of watch events, ended after `timeout` or when the watch is closed
/// (every sender dropped: the server stopped, or [`FakeApiServer::break_watches`]).
fn streaming(mut rx: mpsc::UnboundedReceiver<Bytes>, timeout: Option<Duration>) -> Response<Body> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let stream = async_stream(move |yield_tx| async move {
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(n) => n,
                    Err(_) => return,
                },
                None => rx.recv().await,
            };
            match next {
                Some(bytes) => {
                    if yield_tx.send(Ok(Frame::data(bytes))).await.is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// A stream fed by a task through a bounded channel (ends when the task does).
fn async_stream<F, Fut>(
    f: F,
) -> tokio_stream::wrappers::ReceiverStream<Result<Frame<Bytes>, Infallible>>
where
    F: FnOnce(mpsc::Sender<Result<Frame<Bytes>, Infallible>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
