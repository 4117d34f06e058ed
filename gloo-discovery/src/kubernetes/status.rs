//! Writing gloo-core's statuses back to the resources in Kubernetes, as Gloo's reporter does.
//!
//! Gloo (solo-kit's reporter) keeps one status per reporting namespace under
//! `status.statuses.<namespace>`: `state` (`Accepted`, `Warning`, `Rejected`), `reason` (for a
//! rejection solo-kit's multierror text, `N error(s) occurred:\n\t* ...`, then the warnings; for a
//! warning `warning: \n  ` and the warnings one per line) and `reportedBy` (`gateway` for the
//! `gateway.solo.io` kinds, `gloo` for the others). `RateLimitConfig` has its own status type:
//! `state` `ACCEPTED` / `REJECTED`, `message`, `observedGeneration`.
//!
//! Differences from Gloo: the patch is a JSON merge patch of that one namespace's entry (Gloo
//! sends a JSON patch `replace` of the same path; both leave other reporters' entries alone); it
//! goes to the `status` subresource for the kinds whose CRD has one in Gloo's manifests
//! (`RateLimitConfig`), else to the resource itself, as Gloo's CRDs declare no status
//! subresource (set [`StatusWriter::status_subresource`] for clusters whose CRDs do);
//! `subresourceStatuses` (the proxies' listener and route states), `messages` and a rate limit
//! config's `observedGeneration` are not written. Only
//! resources read from the API server (their origin is an API path) are written; Secrets and
//! ConfigMaps (built-in kinds) are not.
//!
//! **Ingresses.** What an Ingress asks for that gloo does not serve (a resource backend, a
//! Service port name the Service lacks, ...: see [`translate_ingresses`](super::translate_ingresses))
//! is reported as a Kubernetes Event on the Ingress: type `Warning`, reason `Rejected`, the
//! field and why in the message, `source.component: gloo`, as controllers report problems with
//! built-in objects (`kubectl describe ingress` lists them). An Ingress's `status` has no room
//! for it: its schema is `loadBalancer` alone, and a real API server drops other fields. Gloo's
//! ingress controller only logs these problems (and writes no status either). Each problem is
//! one Event, named `<ingress>.<hash of the Ingress uid and the problem>`, created once: a
//! restarted gloo finds it there (`409 AlreadyExists`) rather than repeating it. A problem
//! still there after [`EVENT_REFRESH`] is announced again as client-go's event recorder
//! announces a repeated event: its `count` goes up and `lastTimestamp` moves. The API server
//! deletes Events an hour after their last update by default, so the refresh keeps a lasting
//! problem visible; an Event it already deleted is created again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gloo_core::model::Kind;
use gloo_core::status::{Reports, ResourceKey, ResourceStatus, State};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::source::{api_resource, object_path};

/// Why some statuses (or Ingress Events) could not be written (the others were).
#[derive(Debug, thiserror::Error)]
#[error("{} status write(s) and {} event(s) failed: {}", failures.len(), event_failures.len(), failures.iter().map(|(k, e)| format!("{k}: {e}")).chain(event_failures.iter().map(|(i, e)| format!("event on {i}: {e}"))).collect::<Vec<_>>().join("; "))]
pub struct StatusWriteError {
    /// Each resource whose status could not be written, and why.
    pub failures: Vec<(ResourceKey, String)>,
    /// Each Ingress (`namespace/name`) whose problem Event could not be created, and why.
    pub event_failures: Vec<(String, String)>,
}

/// The reason of the Events reporting what an Ingress asks for that is not served.
pub const INGRESS_REJECTED_REASON: &str = "Rejected";

/// Writes statuses, skipping those that have not changed since it last wrote them.
///
/// ```no_run
/// use gloo_core::translate::Translator;
/// use gloo_discovery::kubernetes::StatusWriter;
///
/// # async fn run(snapshot: gloo_core::source::SourceSnapshot) -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let writer = StatusWriter::new(client, "gloo-system");
/// let translation = Translator::new().translate(&snapshot);
/// let written = writer.write(&translation.reports).await?;
/// println!("{written} statuses written");
/// # Ok(())
/// # }
/// ```
pub struct StatusWriter {
    client: kube::Client,
    reporter_namespace: String,
    subresource_for_all: bool,
    written: Mutex<HashMap<ResourceKey, Value>>,
    /// The Ingress Events created (or found already there), by `namespace/name`.
    events: Mutex<HashMap<String, Announced>>,
    event_refresh: Duration,
}

/// When an Ingress Event was last written, and the `count` it was written with.
#[derive(Debug, Clone, Copy)]
struct Announced {
    at: Instant,
    count: i32,
}

/// How long an Ingress problem's Event stands before a problem still there is announced
/// again: half the API server's default Event time to live (`--event-ttl`, one hour).
pub const EVENT_REFRESH: Duration = Duration::from_secs(30 * 60);

impl std::fmt::Debug for StatusWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("reporter_namespace", &self.reporter_namespace)
            .field("subresource_for_all", &self.subresource_for_all)
            .finish_non_exhaustive()
    }
}

impl StatusWriter {
    /// A writer reporting as the gloo running in `reporter_namespace` (the key under
    /// `status.statuses`; Gloo uses its pod's namespace, usually `gloo-system`).
    pub fn new(client: kube::Client, reporter_namespace: impl Into<String>) -> Self {
        StatusWriter {
            client,
            reporter_namespace: reporter_namespace.into(),
            subresource_for_all: false,
            written: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
            event_refresh: EVENT_REFRESH,
        }
    }

    /// How long an Ingress problem's Event stands before a problem still there is announced
    /// again ([`EVENT_REFRESH`] by default; see the module docs).
    pub fn event_refresh(mut self, every: Duration) -> Self {
        self.event_refresh = every;
        self
    }

    /// Write every kind's status to its `status` subresource (for CRDs that declare one).
    pub fn status_subresource(mut self, all: bool) -> Self {
        self.subresource_for_all = all;
        self
    }

    /// Writes the status of every resource in `reports` that came from the API server, and an
    /// Event for each Ingress problem among its load errors (see the module docs); returns how
    /// many were written (unchanged statuses and Events already created are skipped). A
    /// resource deleted meanwhile (404) is skipped; other failures are collected and returned
    /// after trying every resource.
    pub async fn write(&self, reports: &Reports) -> Result<usize, StatusWriteError> {
        let mut failures = Vec::new();
        let mut written = 0;
        for (key, status) in &reports.resources {
            // Built-in kinds have no Gloo status.
            if matches!(key.kind, Kind::Secret | Kind::ConfigMap) || !from_api_server(key, status) {
                continue;
            }
            let body = self.patch_body(key.kind, status);
            let unchanged = self
                .lock()
                .get(key)
                .is_some_and(|previous| *previous == body);
            if unchanged {
                continue;
            }
            match self.patch(key, &body).await {
                Ok(()) => {
                    written += 1;
                    self.lock().insert(key.clone(), body);
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    self.lock().remove(key);
                }
                Err(err) => failures.push((key.clone(), err.to_string())),
            }
        }
        let mut event_failures = Vec::new();
        for problem in reports
            .load_errors
            .iter()
            .filter_map(|e| IngressLoadError::parse(e))
        {
            match self.ingress_event(&problem).await {
                Ok(true) => written += 1,
                Ok(false) => {}
                Err(err) => event_failures.push((
                    format!("{}/{}", problem.namespace, problem.name),
                    err.to_string(),
                )),
            }
        }
        if failures.is_empty() && event_failures.is_empty() {
            Ok(written)
        } else {
            Err(StatusWriteError {
                failures,
                event_failures,
            })
        }
    }

    /// Creates the Event reporting `problem` unless it was created before, or announces it
    /// again (`count` + 1) once it has stood for the refresh interval; whether an Event was
    /// written now. An Ingress deleted meanwhile gets none.
    async fn ingress_event(&self, problem: &IngressLoadError<'_>) -> Result<bool, kube::Error> {
        let ingresses: Api<Ingress> = Api::namespaced(self.client.clone(), problem.namespace);
        let Some(ingress) = ingresses.get_opt(problem.name).await? else {
            return Ok(false);
        };
        let uid = ingress.metadata.uid.clone().unwrap_or_default();
        let name = event_name(problem.name, &uid, problem.message);
        let key = format!("{}/{name}", problem.namespace);
        let announced = self.events_lock().get(&key).copied();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let events: Api<Event> = Api::namespaced(self.client.clone(), problem.namespace);
        if let Some(announced) = announced {
            if announced.at.elapsed() < self.event_refresh {
                return Ok(false);
            }
            let count = announced.count.saturating_add(1);
            let patch = json!({"count": count, "lastTimestamp": now});
            match events
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.events_lock().insert(
                        key,
                        Announced {
                            at: Instant::now(),
                            count,
                        },
                    );
                    return Ok(true);
                }
                // Expired (the API server's Event TTL): created again below.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(problem.namespace.to_string()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("networking.k8s.io/v1".into()),
                kind: Some("Ingress".into()),
                name: Some(problem.name.to_string()),
                namespace: Some(problem.namespace.to_string()),
                uid: ingress.metadata.uid.clone(),
                resource_version: ingress.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            type_: Some("Warning".into()),
            reason: Some(INGRESS_REJECTED_REASON.into()),
            message: Some(problem.message.to_string()),
            source: Some(EventSource {
                component: Some("gloo".into()),
                host: None,
            }),
            reporting_component: Some("gloo".into()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Event::default()
        };
        let (created, count) = match events.create(&PostParams::default(), &event).await {
            Ok(_) => (true, 1),
            // Created by an earlier run: its count goes on from there.
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let existing = events.get_opt(&name).await?;
                (false, existing.and_then(|e| e.count).unwrap_or(1))
            }
            Err(err) => return Err(err),
        };
        self.events_lock().insert(
            key,
            Announced {
                at: Instant::now(),
                count,
            },
        );
        Ok(created)
    }

    fn events_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Announced>> {
        crate::runner::lock(&self.events)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceKey, Value>> {
        crate::runner::lock(&self.written)
    }

    async fn patch(&self, key: &ResourceKey, body: &Value) -> Result<(), kube::Error> {
        let resource = api_resource(key.kind);
        let namespace = key
            .reference
            .namespace_or(gloo_core::model::DEFAULT_NAMESPACE);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params = PatchParams::default();
        let patch = Patch::Merge(body);
        if self.subresource_for_all || has_status_subresource(key.kind) {
            api.patch_status(&key.reference.name, &params, &patch)
                .await?;
        } else {
            api.patch(&key.reference.name, &params, &patch).await?;
        }
        Ok(())
    }

    /// The merge patch writing `status` as this reporter's entry.
    fn patch_body(&self, kind: Kind, status: &ResourceStatus) -> Value {
        let entry = if kind == Kind::RateLimitConfig {
            rate_limit_config_status(status)
        } else {
            gloo_status(kind, status)
        };
        json!({"status": {"statuses": {self.reporter_namespace.as_str(): entry}}})
    }
}

/// Whether a resource was read from the API server: its origin is its own API path (resources of
/// other sources, and VirtualServices made from Ingresses, are not written).
fn from_api_server(key: &ResourceKey, status: &ResourceStatus) -> bool {
    let namespace = key
        .reference
        .namespace_or(gloo_core::model::DEFAULT_NAMESPACE);
    let path = object_path(&api_resource(key.kind), namespace, &key.reference.name);
    status.origin.as_deref() == Some(format!("{path}:1").as_str())
}

/// An Ingress problem as the source reports it among the load errors
/// (`/apis/networking.k8s.io/v1/namespaces/<ns>/ingresses/<name>:1:1: <field>: <why>`, see
/// `IngressTranslation::load_errors`).
#[derive(Debug, PartialEq, Eq)]
struct IngressLoadError<'a> {
    namespace: &'a str,
    name: &'a str,
    /// `<field>: <why>`.
    message: &'a str,
}

impl<'a> IngressLoadError<'a> {
    fn parse(error: &'a str) -> Option<Self> {
        let rest = error.strip_prefix("/apis/networking.k8s.io/v1/namespaces/")?;
        let (namespace, rest) = rest.split_once("/ingresses/")?;
        let (name, message) = rest.split_once(":1:1: ")?;
        // One Ingress (a problem of several names them all, comma-separated: not an Event).
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        };
        (valid(namespace) && valid(name)).then_some(IngressLoadError {
            namespace,
            name,
            message,
        })
    }
}

/// `<ingress>.<16 hex digits>`: the hash of the Ingress's uid and the problem (a recreated
/// Ingress gets its own Events), the Ingress's name cut so the whole stays a valid name.
fn event_name(ingress: &str, uid: &str, message: &str) -> String {
    let hash = xxhash_rust::xxh64::xxh64(format!("{uid}\n{message}").as_bytes(), 0);
    let cut = ingress
        .char_indices()
        .nth(200)
        .map_or(ingress, |(at, _)| &ingress[..at]);
    format!("{}.{hash:016x}", cut.trim_end_matches(['.', '-']))
}

/// Whether Gloo's CRD manifest for `kind` declares a `status` subresource.
fn has_status_subresource(kind: Kind) -> bool {
    kind == Kind::RateLimitConfig
}

/// Who reports a kind: `gateway` for `gateway.solo.io`, `gloo` for the rest.
fn reported_by(kind: Kind) -> &'static str {
    if kind.api_version().starts_with("gateway.solo.io/") {
        "gateway"
    } else {
        "gloo"
    }
}

/// solo-kit's `core.Status` (JSON, enums as names). `reason` is written as `null` when empty so
/// the merge patch removes an old one.
pub(crate) fn gloo_status(kind: Kind, status: &ResourceStatus) -> Value {
    let warnings = (!status.warnings.is_empty())
        .then(|| format!("warning: \n  {}", status.warnings.join("\n")));
    let reason = match status.state {
        State::Rejected => {
            let n = status.errors.len();
            let mut text = format!(
                "{n} {} occurred:\n",
                if n == 1 { "error" } else { "errors" }
            );
            for e in &status.errors {
                text.push_str(&format!("\t* {e}\n"));
            }
            text.push('\n');
            if let Some(w) = warnings {
                text.push('\n');
                text.push_str(&w);
            }
            Some(text)
        }
        State::Warning => warnings,
        State::Accepted => None,
    };
    json!({
        "state": status.state.to_string(),
        "reason": reason,
        "reportedBy": reported_by(kind),
    })
}

/// solo-apis' `RateLimitConfigStatus`: `ACCEPTED` or `REJECTED`, and a message.
fn rate_limit_config_status(status: &ResourceStatus) -> Value {
    let (state, message) = match status.state {
        State::Rejected => ("REJECTED", Some(status.errors.join("; "))),
        State::Warning => ("ACCEPTED", Some(status.warnings.join("; "))),
        State::Accepted => ("ACCEPTED", None),
    };
    json!({"state": state, "message": message})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubernetes::{translate_ingresses, IngressOptions};

    #[test]
    fn ingress_problems_are_found_among_the_load_errors_as_the_source_reports_them() {
        let ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web.v2", "namespace": "shop"},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"resource": {"kind": "Bucket", "name": "static"}}}]}}]}
        }))
        .expect("an Ingress");
        let out = translate_ingresses(&[ingress], &[], &IngressOptions::default());
        let errors: Vec<String> = out.load_errors().iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 1);
        let problem = IngressLoadError::parse(&errors[0]).expect("an Ingress problem");
        assert_eq!((problem.namespace, problem.name), ("shop", "web.v2"));
        assert!(
            problem.message.starts_with(
                "spec.rules[0].http.paths[0].backend.resource: resource backends are not supported"
            ),
            "{}",
            problem.message
        );
        // Other load errors are not Ingress problems.
        for other in [
            "/apis/gateway.solo.io/v1/namespaces/shop/virtualservices/web:3:1: spec: unknown field",
            "config/vs.yaml:1:1: metadata: unknown field",
            "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/a,/apis/networking.k8s.io/v1/namespaces/shop/ingresses/b:1:1: host x: invalid",
        ] {
            assert_eq!(IngressLoadError::parse(other), None, "{other}");
        }
    }

    #[test]
    fn event_names_are_stable_per_ingress_and_problem_and_valid() {
        let a = event_name("web", "uid-1", "spec.tls[0].hosts: empty");
        assert_eq!(a, event_name("web", "uid-1", "spec.tls[0].hosts: empty"));
        assert_ne!(a, event_name("web", "uid-2", "spec.tls[0].hosts: empty"));
        assert_ne!(a, event_name("web", "uid-1", "spec.tls[1].hosts: empty"));
        assert!(a.starts_with("web.") && a.len() == "web.".len() + 16, "{a}");
        let long = event_name(&"a".repeat(253), "u", "m");
        assert!(long.len() <= 253, "{}", long.len());
    }
}
