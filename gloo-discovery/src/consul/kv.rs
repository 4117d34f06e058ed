//! [`ConsulKvSource`]: Gloo resources stored in Consul's KV store, as a config source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use gloo_core::load::{self, FileContents, LoadError, LoadedResource};
use gloo_core::model::settings::ConsulKv;
use gloo_core::model::Kind;
use gloo_core::source::{ConfigSource, SourceSnapshot};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::client::{BlockingIndex, ConsulClient, KvPair};

/// Gloo's default `consulKvSource.rootKey`.
pub const DEFAULT_ROOT_KEY: &str = "gloo";

/// Gloo resources stored under a root key of Consul's KV store (Gloo's `consulKvSource`),
/// watched with a blocking query on `/v1/kv/<root>/?recurse=true`.
///
/// Each key holds one resource in Gloo's layout,
/// `<root>/<group>/<version>/<Kind>/<namespace>/<name>` (for example
/// `gloo/gateway.solo.io/v1/VirtualService/gloo-system/default`), written as Gloo writes it:
/// the resource's fields at the top level (`metadata`, `virtualHost`, ...) without `apiVersion`,
/// `kind` or `spec`; the kind comes from the key, and a missing `metadata.name` / `namespace`
/// from its last two segments. A value that does carry `apiVersion` and `kind` is read like a
/// config file instead, under any key: one or more `---`-separated YAML documents, or JSON.
///
/// A value that does not parse is reported in the snapshot's errors (named `consul-kv:<key>`)
/// and that key's last good contents stay in force, as a file does in a config directory. A
/// deleted key removes its resources. When Consul cannot be reached the last snapshot stays in
/// force and the watch retries with a backoff (1 s doubling to 30 s).
///
/// Deviation: in Gloo's key layout the line and column of an error refer to the resource as
/// gloo rewrote it (with `apiVersion`, `kind` and `spec`), not to the stored text.
pub struct ConsulKvSource {
    name: String,
    sender: watch::Sender<Arc<SourceSnapshot>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for ConsulKvSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsulKvSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What the source remembers of one key.
#[derive(Debug, Clone)]
struct KeyState {
    modify_index: u64,
    /// The newest contents that parsed without errors (what is in force).
    good: Vec<LoadedResource>,
    /// Errors of the newest value, if it failed.
    errors: Vec<LoadError>,
}

impl ConsulKvSource {
    /// Starts watching `root_key` (Gloo's `consulKvSource.rootKey`, default `gloo`) on the
    /// current tokio runtime. The first snapshot (generation 1) is published once Consul first
    /// answers; dropping the source stops the watch.
    pub fn start(client: ConsulClient, root_key: impl Into<String>) -> Self {
        let root = root_key.into();
        let root = root.trim_matches('/').to_string();
        let name = format!("consul-kv:{root}");
        let (sender, _) = watch::channel(Arc::new(SourceSnapshot::default()));
        let task = tokio::spawn(watch_kv(client, root, sender.clone()));
        ConsulKvSource { name, sender, task }
    }

    /// The root key of Gloo's `consulKvSource` settings (`rootKey`, default `gloo`).
    ///
    /// ```
    /// use gloo_core::model::settings::ConsulKv;
    /// use gloo_discovery::consul::ConsulKvSource;
    /// assert_eq!(ConsulKvSource::root_key(&ConsulKv::default()), "gloo");
    /// ```
    pub fn root_key(settings: &ConsulKv) -> &str {
        settings
            .root_key
            .as_deref()
            .filter(|k| !k.is_empty())
            .unwrap_or(DEFAULT_ROOT_KEY)
    }
}

impl ConfigSource for ConsulKvSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.sender.subscribe()
    }
}

impl Drop for ConsulKvSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn watch_kv(client: ConsulClient, root: String, sender: watch::Sender<Arc<SourceSnapshot>>) {
    let prefix = format!("{root}/");
    let mut keys: BTreeMap<String, KeyState> = BTreeMap::new();
    let mut index = BlockingIndex::default();
    let mut delay = Duration::from_secs(1);
    let mut first = true;
    loop {
        let answer = match client.kv_list(&prefix, index.get()).await {
            Ok(answer) => answer,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?delay, "Consul KV config source: read failed; keeping the last good config");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
                // Start over: the index may be stale after an outage.
                index.reset();
                continue;
            }
        };
        delay = Duration::from_secs(1);
        if !index.advance(answer.index) {
            continue;
        }
        let changed = apply(&root, &mut keys, answer.value);
        if changed || first {
            first = false;
            let resources = keys.values().flat_map(|k| k.good.iter().cloned()).collect();
            let errors = keys
                .values()
                .flat_map(|k| k.errors.iter().cloned())
                .collect();
            sender.send_modify(|current| {
                *current = Arc::new(SourceSnapshot {
                    resources,
                    errors,
                    generation: current.generation + 1,
                });
            });
        }
    }
}

/// Applies a listing to the per-key state; true if anything changed.
fn apply(root: &str, keys: &mut BTreeMap<String, KeyState>, listing: Vec<KvPair>) -> bool {
    let mut changed = false;
    let listed: BTreeMap<String, KvPair> = listing
        .into_iter()
        // Folders (`a/b/`) hold no resource.
        .filter(|pair| !pair.key.ends_with('/'))
        .map(|pair| (pair.key.clone(), pair))
        .collect();
    let before = keys.len();
    keys.retain(|key, _| listed.contains_key(key));
    changed |= keys.len() != before;
    for (key, pair) in listed {
        if keys
            .get(&key)
            .is_some_and(|k| k.modify_index == pair.modify_index)
        {
            continue;
        }
        changed = true;
        let FileContents { resources, errors } = parse_value(root, &key, pair.value.as_deref());
        match keys.get_mut(&key) {
            Some(state) if !errors.is_empty() => {
                // A bad write: keep what was in force, report why the new value was refused.
                tracing::warn!(key = %key, "Consul KV value has errors; keeping its last good contents");
                state.modify_index = pair.modify_index;
                state.errors = errors;
            }
            _ => {
                keys.insert(
                    key,
                    KeyState {
                        modify_index: pair.modify_index,
                        good: resources,
                        errors,
                    },
                );
            }
        }
    }
    changed
}

/// Parses one key's value (base64 as Consul sends it).
fn parse_value(root: &str, key: &str, value: Option<&str>) -> FileContents {
    let origin: Arc<str> = format!("consul-kv:{key}").into();
    let error = |message: String| FileContents {
        resources: Vec::new(),
        errors: vec![LoadError {
            file: origin.clone(),
            line: 1,
            column: 1,
            message,
        }],
    };
    let bytes = match value {
        None => return FileContents::default(),
        Some(encoded) => match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => bytes,
            Err(err) => return error(format!("the value is not base64 as Consul sends it: {err}")),
        },
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(_) => return error("the value is not UTF-8 text".to_string()),
    };
    if text.trim().is_empty() {
        return FileContents::default();
    }
    let format = if text.trim_start().starts_with('{') {
        load::Format::Json
    } else {
        load::Format::Yaml
    };
    if let Some(kind) = layout_kind(root, key) {
        match gloo_layout(&text, kind, key) {
            Ok(Some(rewritten)) => return load::parse_str(&rewritten, origin, load::Format::Yaml),
            Ok(None) => {}
            Err(message) => return error(message),
        }
    }
    load::parse_str(&text, origin, format)
}

/// The kind a key names in Gloo's layout `<root>/<group>/<version>/<Kind>/<namespace>/<name>`.
fn layout_kind<'k>(root: &str, key: &'k str) -> Option<(Kind, &'k str, &'k str)> {
    let rest = key.strip_prefix(root)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [group, version, kind, namespace, name] = parts.as_slice() else {
        return None;
    };
    let kind = Kind::from_name(kind)?;
    (kind.api_version() == format!("{group}/{version}")).then_some((kind, *namespace, *name))
}

/// Rewrites a value in Gloo's flat form (no `kind`) into a resource document; `None` when the
/// value has a `kind` of its own (it is then read as it is).
fn gloo_layout(
    text: &str,
    target: (Kind, &str, &str),
    key: &str,
) -> Result<Option<String>, String> {
    use serde_yaml_ng::{Mapping, Value};
    let (kind, namespace, name) = target;
    let value: Value = serde_yaml_ng::from_str(text).map_err(|err| err.to_string())?;
    let Value::Mapping(mut fields) = value else {
        return Err(format!(
            "a {} in Gloo's key layout must be a mapping of its fields",
            kind.name()
        ));
    };
    if fields.contains_key("kind") {
        return Ok(None);
    }
    let mut metadata = match fields.remove("metadata") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(m)) => m,
        Some(_) => return Err("metadata: expected a mapping".to_string()),
    };
    for (field, from_key) in [("name", name), ("namespace", namespace)] {
        match metadata.get(field) {
            None | Some(Value::Null) => {
                metadata.insert(field.into(), from_key.into());
            }
            Some(Value::String(s)) if s == from_key => {}
            Some(other) => {
                return Err(format!(
                    "metadata.{field}: {} differs from the key {key}",
                    serde_yaml_ng::to_string(other).unwrap_or_default().trim()
                ))
            }
        }
    }
    // Statuses are Gloo's own writes next to the resource, not configuration.
    fields.remove("status");
    fields.remove("namespacedStatuses");
    let mut document = Mapping::new();
    document.insert("apiVersion".into(), kind.api_version().into());
    document.insert("kind".into(), kind.name().into());
    document.insert("metadata".into(), Value::Mapping(metadata));
    document.insert("spec".into(), Value::Mapping(fields));
    serde_yaml_ng::to_string(&Value::Mapping(document))
        .map(Some)
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn glooss_key_layout_takes_the_kind_and_name_from_the_key() {
        let key = "gloo/gloo.solo.io/v1/Upstream/apps/petstore";
        let parsed = parse_value(
            "gloo",
            key,
            Some(&b64(
                "static:\n  hosts: [{addr: 10.0.0.1, port: 80}]\nstatus: {}\n",
            )),
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let meta = parsed.resources[0].resource.metadata();
        assert_eq!((meta.name.as_str(), meta.namespace()), ("petstore", "apps"));
        assert_eq!(
            &*parsed.resources[0].origin.file,
            "consul-kv:gloo/gloo.solo.io/v1/Upstream/apps/petstore"
        );
    }

    #[test]
    fn a_name_that_differs_from_the_key_is_an_error_naming_both() {
        let key = "gloo/gloo.solo.io/v1/Upstream/apps/petstore";
        let parsed = parse_value(
            "gloo",
            key,
            Some(&b64("metadata: {name: other}\nstatic: {}\n")),
        );
        assert!(parsed.resources.is_empty());
        assert!(
            parsed.errors[0]
                .message
                .contains("metadata.name: other differs from the key"),
            "{:?}",
            parsed.errors
        );
    }

    #[test]
    fn values_with_a_kind_are_read_as_config_files_under_any_key() {
        let yaml = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: b}\nspec: {}\n";
        let parsed = parse_value("gloo", "gloo/team-a/upstreams", Some(&b64(yaml)));
        assert_eq!(parsed.resources.len(), 2);
        let json = r#"{"apiVersion":"gloo.solo.io/v1","kind":"Upstream","metadata":{"name":"j"},"spec":{"bogus":1}}"#;
        let parsed = parse_value("gloo", "gloo/j", Some(&b64(json)));
        assert!(
            parsed.errors[0]
                .to_string()
                .starts_with("consul-kv:gloo/j:1:"),
            "{}",
            parsed.errors[0]
        );
    }
}
