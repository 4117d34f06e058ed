//! Upstream discovery (Gloo's UDS) for Kubernetes: one `kube` Upstream per Service port.
//!
//! Follows solo-io/gloo `projects/gloo/pkg/plugins/kubernetes/uds_convert.go` and its
//! `serviceconverter` package:
//!
//! - name [`kube_upstream_name`]`(<namespace>, <service>, <port>)`, in the write namespace;
//! - `metadata.labels` is only `discovered_by: kubernetesplugin` (the Service's labels go to
//!   `discoveryMetadata.labels`); `metadata.annotations` are the Service's;
//! - `kube`: `serviceName`, `serviceNamespace`, `servicePort`, and the Service's `selector`;
//! - `useHttp2`: the `gloo.solo.io/h2_service` annotation (`"true"` / `"false"`) of the
//!   Service, else of the global annotations; else `true` when the port's `appProtocol` is
//!   `http2`, `grpc`, `grpc-web` or `kubernetes.io/h2c`, or its name starts with `grpc`, `h2` or
//!   `http2`; else unset;
//! - `sslConfig` from the `gloo.solo.io/sslService.*` annotations (`secret`, `tlsCert`, `tlsKey`,
//!   `rootCa`, `oneWayTls`; a `<port>:` prefix limits a value to that port);
//! - last, `gloo.solo.io/upstream_config` (global annotations first, then the Service's): JSON of
//!   an Upstream merged into the discovered one: each top-level field it sets replaces the
//!   discovered field (the upstream type is one field: setting `static` drops `kube`), or, with
//!   `gloo.solo.io/upstream_config.deep_merge: "true"`, objects merge recursively with the
//!   annotation winning. `metadata`, `discoveryMetadata` and `namespacedStatuses` are never
//!   taken from it.
//!
//! An annotation that does not parse, or yields an invalid Upstream, is logged with the Service
//! and the field, and the Upstream is discovered without it (Gloo logs and goes on too).

use std::collections::BTreeMap;

use gloo_core::model::upstream::UpstreamSpec;
use gloo_core::model::ObjectMeta;
use gloo_core::translate::kube_upstream_name;
use k8s_openapi::api::core::v1::{Service, ServicePort};
use serde_json::{json, Map, Value};

use crate::plugin::Upstream;

/// The `discovered_by` label value of upstreams Gloo's Kubernetes plugin discovers.
pub const DISCOVERED_BY: &str = "kubernetesplugin";
/// Service annotation: JSON of an Upstream merged into the discovered one.
pub const UPSTREAM_CONFIG_ANNOTATION: &str = "gloo.solo.io/upstream_config";
/// Service annotation: `"true"` merges [`UPSTREAM_CONFIG_ANNOTATION`] recursively.
pub const DEEP_MERGE_ANNOTATION: &str = "gloo.solo.io/upstream_config.deep_merge";
/// Service annotation: `"true"` / `"false"` sets the upstream's `useHttp2`.
pub const H2_ANNOTATION: &str = "gloo.solo.io/h2_service";
const SSL_SECRET_ANNOTATION: &str = "gloo.solo.io/sslService.secret";
const SSL_CERT_ANNOTATION: &str = "gloo.solo.io/sslService.tlsCert";
const SSL_KEY_ANNOTATION: &str = "gloo.solo.io/sslService.tlsKey";
const SSL_ROOT_CA_ANNOTATION: &str = "gloo.solo.io/sslService.rootCa";
const SSL_ONE_WAY_ANNOTATION: &str = "gloo.solo.io/sslService.oneWayTls";

/// Port names that mean HTTP/2 (a prefix match, as in Gloo).
const HTTP2_PORT_NAMES: &[&str] = &["grpc", "h2", "http2"];
/// `appProtocol` values that mean HTTP/2 (Istio's names and GEP-1911's `kubernetes.io/h2c`).
const HTTP2_APP_PROTOCOLS: &[&str] = &["http2", "grpc", "grpc-web", "kubernetes.io/h2c"];

/// The upstreams of one Service: one per port, as Gloo's UDS discovers them. `global_annotations`
/// are Settings' `upstreamOptions.globalAnnotations` (the Service's own annotations win).
///
/// ```
/// use gloo_discovery::kubernetes::upstreams_for_service;
/// use k8s_openapi::api::core::v1::Service;
///
/// let service: Service = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "petstore", "namespace": "default"},
///     "spec": {"selector": {"app": "petstore"}, "ports": [{"name": "grpc-api", "port": 8080}]}
/// })).unwrap();
/// let upstreams = upstreams_for_service(&service, "gloo-system", &Default::default());
/// assert_eq!(upstreams[0].metadata.name, "default-petstore-8080");
/// assert_eq!(upstreams[0].spec.use_http2, Some(true));
/// ```
pub fn upstreams_for_service(
    service: &Service,
    write_namespace: &str,
    global_annotations: &BTreeMap<String, String>,
) -> Vec<Upstream> {
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default();
    ports
        .iter()
        .filter_map(|port| upstream_for_port(service, port, write_namespace, global_annotations))
        .collect()
}

fn upstream_for_port(
    service: &Service,
    port: &ServicePort,
    write_namespace: &str,
    global_annotations: &BTreeMap<String, String>,
) -> Option<Upstream> {
    let namespace = service.metadata.namespace.as_deref().unwrap_or("default");
    let name = service.metadata.name.as_deref()?;
    let number = u32::try_from(port.port).ok()?;
    let empty = BTreeMap::new();
    let annotations = service.metadata.annotations.as_ref().unwrap_or(&empty);
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();

    let mut kube = Map::new();
    kube.insert("serviceName".into(), json!(name));
    kube.insert("serviceNamespace".into(), json!(namespace));
    kube.insert("servicePort".into(), json!(number));
    if !selector.is_empty() {
        kube.insert("selector".into(), json!(selector));
    }
    let mut spec = Map::new();
    spec.insert("kube".into(), Value::Object(kube));
    if let Some(labels) = service.metadata.labels.as_ref().filter(|l| !l.is_empty()) {
        spec.insert("discoveryMetadata".into(), json!({ "labels": labels }));
    }
    // Converters in Gloo's order: HTTP/2, SSL, then the general annotation (which may
    // override what the first two set).
    if let Some(h2) = use_http2(annotations, global_annotations, port) {
        spec.insert("useHttp2".into(), json!(h2));
    }
    if let Some(ssl) = ssl_config(annotations, namespace, port.port) {
        spec.insert("sslConfig".into(), ssl);
    }
    let mut spec = Value::Object(spec);
    for (origin, source) in [
        ("Settings globalAnnotations", global_annotations),
        ("", annotations),
    ] {
        if let Err(err) = apply_upstream_config(&mut spec, source) {
            let origin = if origin.is_empty() {
                format!("Service {namespace}.{name}")
            } else {
                origin.to_string()
            };
            tracing::warn!(
                %origin,
                annotation = UPSTREAM_CONFIG_ANNOTATION,
                error = %err,
                "ignoring an invalid upstream_config annotation"
            );
        }
    }
    let spec: UpstreamSpec = match serde_json::from_value(spec) {
        Ok(spec) => spec,
        Err(err) => {
            tracing::warn!(service = %format!("{namespace}.{name}"), error = %err, "discovered upstream does not parse; skipped");
            return None;
        }
    };
    let mut labels = BTreeMap::new();
    labels.insert("discovered_by".to_string(), DISCOVERED_BY.to_string());
    let metadata = ObjectMeta {
        name: kube_upstream_name(namespace, name, number),
        namespace: Some(write_namespace.to_string()),
        labels,
        annotations: annotations.clone(),
        ..ObjectMeta::default()
    };
    Some(Upstream::new(metadata, spec))
}

fn use_http2(
    annotations: &BTreeMap<String, String>,
    global: &BTreeMap<String, String>,
    port: &ServicePort,
) -> Option<bool> {
    for source in [annotations, global] {
        match source.get(H2_ANNOTATION).map(String::as_str) {
            Some("true") => return Some(true),
            Some("false") => return Some(false),
            _ => {}
        }
    }
    if port
        .app_protocol
        .as_deref()
        .is_some_and(|p| HTTP2_APP_PROTOCOLS.contains(&p))
    {
        return Some(true);
    }
    let name = port.name.as_deref().unwrap_or_default();
    HTTP2_PORT_NAMES
        .iter()
        .any(|prefix| name.starts_with(prefix))
        .then_some(true)
}

/// Gloo's `UseSslConverter`: `sslService.*` annotations, each optionally `<port>:<value>`.
fn ssl_config(annotations: &BTreeMap<String, String>, namespace: &str, port: i32) -> Option<Value> {
    let value = |key: &str| -> String {
        let raw = annotations.get(key).map(String::as_str).unwrap_or_default();
        // Go's strings.Split(value, ":"): exactly two parts is `<port>:<value>` (a port that
        // does not parse counts as 0, meaning every port).
        let parts: Vec<&str> = raw.split(':').collect();
        let (val, for_port) = match parts.as_slice() {
            [p, v] => (*v, p.parse::<i32>().unwrap_or(0)),
            _ => (raw, 0),
        };
        if for_port == 0 || for_port == port {
            val.to_string()
        } else {
            String::new()
        }
    };
    let secret = value(SSL_SECRET_ANNOTATION);
    let cert = value(SSL_CERT_ANNOTATION);
    let key = value(SSL_KEY_ANNOTATION);
    let root_ca = value(SSL_ROOT_CA_ANNOTATION);
    let one_way = value(SSL_ONE_WAY_ANNOTATION);
    let mut ssl = Map::new();
    if !one_way.is_empty() {
        ssl.insert("oneWayTls".into(), json!(is_truthy(&one_way)));
    }
    if !secret.is_empty() {
        ssl.insert(
            "secretRef".into(),
            json!({"name": secret, "namespace": namespace}),
        );
    } else if !cert.is_empty() || !key.is_empty() || !root_ca.is_empty() {
        let mut files = Map::new();
        for (field, v) in [("tlsCert", cert), ("tlsKey", key), ("rootCa", root_ca)] {
            if !v.is_empty() {
                files.insert(field.into(), json!(v));
            }
        }
        ssl.insert("sslFiles".into(), Value::Object(files));
    } else {
        return None;
    }
    Some(Value::Object(ssl))
}

/// Go's `envutils.IsTruthyValue`: `strconv.ParseBool` semantics.
fn is_truthy(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// The keys of the upstream type oneof: one field in Gloo's Upstream.
const UPSTREAM_TYPES: &[&str] = &[
    "kube", "static", "pipe", "aws", "azure", "consul", "awsEc2", "gcp", "ai",
];
/// Fields discovery owns, never taken from the annotation.
const PROTECTED: &[&str] = &["metadata", "discoveryMetadata", "namespacedStatuses"];

/// Applies `gloo.solo.io/upstream_config` of `annotations` to `spec`.
fn apply_upstream_config(
    spec: &mut Value,
    annotations: &BTreeMap<String, String>,
) -> Result<(), String> {
    let Some(text) = annotations.get(UPSTREAM_CONFIG_ANNOTATION) else {
        return Ok(());
    };
    let config: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut config) = config else {
        return Err("not a JSON object".into());
    };
    for key in PROTECTED {
        config.remove(*key);
    }
    // Check it is a valid Upstream before merging, so the error names its own field.
    serde_json::from_value::<UpstreamSpec>(Value::Object(config.clone()))
        .map_err(|e| e.to_string())?;
    let deep = annotations.get(DEEP_MERGE_ANNOTATION).map(String::as_str) == Some("true");
    let Value::Object(target) = spec else {
        return Ok(());
    };
    if config.keys().any(|k| UPSTREAM_TYPES.contains(&k.as_str())) {
        // A different type replaces the discovered one; the same type merges (deep) or
        // replaces (shallow) like any field.
        for t in UPSTREAM_TYPES {
            if !config.contains_key(*t) {
                target.remove(*t);
            }
        }
    }
    for (key, value) in config {
        if is_zero(&value) {
            // Gloo's shallow merge skips zero fields; mergo likewise keeps the discovered value.
            continue;
        }
        match target.get_mut(&key) {
            Some(existing) if deep => deep_merge(existing, value),
            _ => {
                target.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Whether a JSON value is what Go decodes to a zero field (null, false, 0, "", [] or {}).
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    }
}

/// `value` wins; objects merge key by key (mergo's merge of the annotation over the discovered
/// upstream).
fn deep_merge(target: &mut Value, value: Value) {
    match (target, value) {
        (Value::Object(target), Value::Object(value)) => {
            for (key, v) in value {
                if is_zero(&v) {
                    continue;
                }
                match target.get_mut(&key) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        target.insert(key, v);
                    }
                }
            }
        }
        (target, value) => *target = value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(json: Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ssl_annotations_follow_gloo() {
        let mut a = BTreeMap::new();
        a.insert(SSL_SECRET_ANNOTATION.to_string(), "443:tls".to_string());
        assert_eq!(ssl_config(&a, "ns", 80), None);
        assert_eq!(
            ssl_config(&a, "ns", 443),
            Some(json!({"secretRef": {"name": "tls", "namespace": "ns"}}))
        );
        let mut a = BTreeMap::new();
        a.insert(SSL_CERT_ANNOTATION.to_string(), "/c.pem".to_string());
        a.insert(SSL_ONE_WAY_ANNOTATION.to_string(), "true".to_string());
        assert_eq!(
            ssl_config(&a, "ns", 1),
            Some(json!({"oneWayTls": true, "sslFiles": {"tlsCert": "/c.pem"}}))
        );
    }

    #[test]
    fn upstream_config_shallow_replaces_fields_and_deep_merges_objects() {
        let svc = service(json!({
            "metadata": {"name": "s", "namespace": "n", "annotations": {
                UPSTREAM_CONFIG_ANNOTATION: r#"{"kube": {"selector": {"v": "2"}}, "connectionConfig": {"maxRequestsPerConnection": 7}}"#
            }},
            "spec": {"selector": {"app": "s"}, "ports": [{"port": 80}]}
        }));
        let shallow = upstreams_for_service(&svc, "gloo-system", &BTreeMap::new());
        let kube = shallow[0].spec.kube.as_ref().unwrap();
        // Shallow: the annotation's `kube` replaced the discovered one whole.
        assert_eq!(kube.service_name, None);
        assert_eq!(kube.selector.get("v").map(String::as_str), Some("2"));
        assert!(shallow[0].spec.connection_config.is_some());

        let mut svc = svc;
        svc.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(DEEP_MERGE_ANNOTATION.into(), "true".into());
        let deep = upstreams_for_service(&svc, "gloo-system", &BTreeMap::new());
        let kube = deep[0].spec.kube.as_ref().unwrap();
        assert_eq!(kube.service_name.as_deref(), Some("s"));
        assert_eq!(kube.selector.get("app").map(String::as_str), Some("s"));
        assert_eq!(kube.selector.get("v").map(String::as_str), Some("2"));
    }

    #[test]
    fn a_bad_upstream_config_is_ignored_not_fatal() {
        let svc = service(json!({
            "metadata": {"name": "s", "namespace": "n", "annotations": {
                UPSTREAM_CONFIG_ANNOTATION: r#"{"nope": 1}"#
            }},
            "spec": {"ports": [{"port": 80}]}
        }));
        let ups = upstreams_for_service(&svc, "gloo-system", &BTreeMap::new());
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].spec.kube.as_ref().unwrap().service_port, Some(80));
    }
}
