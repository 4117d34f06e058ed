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
//! resources read from the API server (their origin is an API path) are written; Secrets are not.

use std::collections::HashMap;
use std::sync::Mutex;

use gloo_core::model::Kind;
use gloo_core::status::{Reports, ResourceKey, ResourceStatus, State};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};

use super::source::{api_resource, object_path};

/// Why some statuses could not be written (the others were).
#[derive(Debug, thiserror::Error)]
#[error("{} status write(s) failed: {}", failures.len(), failures.iter().map(|(k, e)| format!("{k}: {e}")).collect::<Vec<_>>().join("; "))]
pub struct StatusWriteError {
    /// Each resource whose status could not be written, and why.
    pub failures: Vec<(ResourceKey, String)>,
}

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
}

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
        }
    }

    /// Write every kind's status to its `status` subresource (for CRDs that declare one).
    pub fn status_subresource(mut self, all: bool) -> Self {
        self.subresource_for_all = all;
        self
    }

    /// Writes the status of every resource in `reports` that came from the API server; returns
    /// how many were written (unchanged ones are skipped). A resource deleted meanwhile (404)
    /// is skipped; other failures are collected and returned after trying every resource.
    pub async fn write(&self, reports: &Reports) -> Result<usize, StatusWriteError> {
        let mut failures = Vec::new();
        let mut written = 0;
        for (key, status) in &reports.resources {
            if key.kind == Kind::Secret || !from_api_server(key, status) {
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
        if failures.is_empty() {
            Ok(written)
        } else {
            Err(StatusWriteError { failures })
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceKey, Value>> {
        match self.written.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        }
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
