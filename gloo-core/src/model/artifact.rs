//! Gloo's Artifacts: small named pieces of text that options reference by `namespace.name`
//! (OPA `opaAuth.modules`, WAF `configMapRuleSets`).
//!
//! Gloo stores them as Kubernetes `v1` `ConfigMap`s on Kubernetes, and as its own
//! `gloo.solo.io/v1` `Artifact` (`projects/gloo/api/v1/artifact.proto`: `data`, a map of
//! strings, and `metadata`) elsewhere. gloo reads both kinds, with one shape: like a Secret,
//! neither has a `spec`; `data` sits at the top of the document, as `kubectl create configmap
//! ... -o yaml` writes it. Both are the same thing to Gloo, so one `namespace.name` names one
//! of them: a ConfigMap and an Artifact with the same namespace and name are duplicates.
//!
//! A ConfigMap's `binaryData` is accepted and carried, never read: Gloo's ConfigMap-backed
//! Artifacts hold `data` only. A key that is only in `binaryData` is reported as such where
//! an option names it. `immutable` is carried, not interpreted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Document, ObjectMeta};

/// The content of an Artifact (or of the ConfigMap that stores it).
///
/// ```
/// use gloo_core::model::artifact::ArtifactSpec;
/// let mut artifact = ArtifactSpec::default();
/// artifact.data.insert("policy.rego".into(), "package test".into());
/// assert_eq!(artifact.data["policy.rego"], "package test");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactSpec {
    /// The entries, by key (a file name, for OPA modules).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// A ConfigMap's base64 binary entries: carried, never read (Gloo reads `data` only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub binary_data: BTreeMap<String, String>,
    /// A ConfigMap's `immutable` (carried, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl ArtifactSpec {
    /// Why `key` cannot be read: an error saying whether it is absent or only in
    /// `binaryData` (`what` names the Artifact, as `ConfigMap ns.name`).
    pub fn missing_key(&self, key: &str, what: &str) -> String {
        if self.binary_data.contains_key(key) {
            format!(
                "{what} has {key:?} only in binaryData, which Gloo does not read (put it in data)"
            )
        } else {
            let keys: Vec<&str> = self.data.keys().map(String::as_str).collect();
            format!("{what} has no data key {key:?} (its keys: {keys:?})")
        }
    }
}

/// The document form of a ConfigMap: Kubernetes metadata plus the top-level content fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigMapDocument {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    binary_data: BTreeMap<String, String>,
    #[serde(default)]
    immutable: Option<bool>,
}

impl Document<ArtifactSpec> for ConfigMapDocument {
    fn into_parts(self) -> (ObjectMeta, ArtifactSpec) {
        (
            self.metadata,
            ArtifactSpec {
                data: self.data,
                binary_data: self.binary_data,
                immutable: self.immutable,
            },
        )
    }
}

/// The document form of a Gloo Artifact: metadata and `data`, as in Gloo's proto.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ArtifactDocument {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    data: BTreeMap<String, String>,
}

impl Document<ArtifactSpec> for ArtifactDocument {
    fn into_parts(self) -> (ObjectMeta, ArtifactSpec) {
        (
            self.metadata,
            ArtifactSpec {
                data: self.data,
                ..ArtifactSpec::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{parse_str, Format};
    use crate::model::{Kind, Resource};

    #[test]
    fn reads_a_kubectl_config_map_and_a_gloo_artifact() {
        // `kubectl create configmap allow-get --from-file=policy.rego -o yaml --dry-run=client`
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: allow-get\n  creationTimestamp: null\ndata:\n  policy.rego: |\n    package test\n    default allow = false\nbinaryData:\n  logo.png: iVBORw0K\n---\napiVersion: gloo.solo.io/v1\nkind: Artifact\nmetadata: {name: rules, namespace: waf}\ndata: {a.conf: SecRuleEngine On}\n";
        let parsed = parse_str(text, "a.yaml", Format::Yaml);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let Resource::ConfigMap(map) = &parsed.resources[0].resource else {
            panic!("not a ConfigMap")
        };
        assert_eq!(map.metadata.namespace(), "gloo-system");
        assert!(map.spec.data["policy.rego"].starts_with("package test\n"));
        assert_eq!(
            map.spec.missing_key("logo.png", "ConfigMap gloo-system.allow-get"),
            "ConfigMap gloo-system.allow-get has \"logo.png\" only in binaryData, which Gloo does not read (put it in data)"
        );
        assert_eq!(
            map.spec.missing_key("nope", "ConfigMap x"),
            "ConfigMap x has no data key \"nope\" (its keys: [\"policy.rego\"])"
        );
        let Resource::Artifact(artifact) = &parsed.resources[1].resource else {
            panic!("not an Artifact")
        };
        assert_eq!(artifact.to_ref().to_string(), "waf.rules");
        assert_eq!(artifact.spec.data["a.conf"], "SecRuleEngine On");
        assert_eq!(Kind::Artifact.api_version(), "gloo.solo.io/v1");
        assert_eq!(Kind::ConfigMap.api_version(), "v1");
    }

    #[test]
    fn unknown_fields_and_wrong_api_versions_are_errors() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\ndata: {a: b}\nspec: {}\n---\napiVersion: gloo.solo.io/v1\nkind: Artifact\nmetadata: {name: a}\nbinaryData: {a: b}\n---\napiVersion: v1\nkind: Artifact\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: m}\ndata: {a: [1]}\n";
        let parsed = parse_str(text, "m.yaml", Format::Yaml);
        let messages: Vec<String> = parsed.errors.iter().map(|e| e.to_string()).collect();
        assert!(parsed.resources.is_empty(), "{:?}", parsed.resources);
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages[0].starts_with("m.yaml:5:1: unknown field `spec`"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("m.yaml:10:1: unknown field `binaryData`"),
            "{messages:?}"
        );
        assert_eq!(
            messages[2],
            "m.yaml:12:1: kind `Artifact` has apiVersion `gloo.solo.io/v1`, not `v1`"
        );
        assert!(messages[3].starts_with("m.yaml:19:"), "{messages:?}");
        assert!(messages[3].contains("data.a"), "{messages:?}");
    }
}
