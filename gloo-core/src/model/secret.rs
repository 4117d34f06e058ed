//! Kubernetes `v1` `Secret`s, which Gloo's `secretRef`s name: TLS certificates
//! (`kubernetes.io/tls`: `tls.crt`, `tls.key`, `ca.crt`), and the other secret types Gloo's
//! filters read (API keys, OAuth client secrets, header values).
//!
//! A Secret has no `spec`: its fields sit at the top of the document, as `kubectl create secret
//! ... -o yaml` writes them. `data` values are base64; `stringData` values are plain text and
//! win over `data` for the same key, as in Kubernetes.

use std::collections::BTreeMap;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{Document, ObjectMeta};

/// The content of a Secret.
///
/// ```
/// use gloo_core::model::secret::SecretSpec;
/// let mut secret = SecretSpec::default();
/// secret.data.insert("tls.crt".into(), "aGVsbG8=".into());
/// assert_eq!(secret.get("tls.crt").unwrap().unwrap(), b"hello");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    /// The secret type, e.g. `kubernetes.io/tls` or `Opaque`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// Values, base64-encoded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
    /// Values as plain text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub string_data: BTreeMap<String, String>,
    /// Whether the Secret may change (carried, not interpreted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub immutable: Option<bool>,
}

impl SecretSpec {
    /// The value of `key`: `Ok(None)` if absent, an error naming the key if `data` holds
    /// invalid base64.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if let Some(text) = self.string_data.get(key) {
            return Ok(Some(text.as_bytes().to_vec()));
        }
        match self.data.get(key) {
            None => Ok(None),
            Some(encoded) => base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map(Some)
                .map_err(|e| format!("data.{key}: not valid base64: {e}")),
        }
    }
}

/// The document form of a Secret: Kubernetes metadata plus the top-level content fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretDocument {
    #[allow(dead_code)]
    api_version: String,
    #[allow(dead_code)]
    kind: String,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default)]
    string_data: BTreeMap<String, String>,
    #[serde(default)]
    immutable: Option<bool>,
}

impl Document<SecretSpec> for SecretDocument {
    fn into_parts(self) -> (ObjectMeta, SecretSpec) {
        (
            self.metadata,
            SecretSpec {
                type_: self.type_,
                data: self.data,
                string_data: self.string_data,
                immutable: self.immutable,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{parse_str, Format};
    use crate::model::Resource;

    #[test]
    fn reads_a_kubectl_tls_secret() {
        // `kubectl create secret tls gateway-tls --cert=c.pem --key=k.pem --dry-run=client -o yaml`
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: gateway-tls\n  namespace: gloo-system\ntype: kubernetes.io/tls\ndata:\n  tls.crt: Y2VydA==\n  tls.key: a2V5\nstringData:\n  ca.crt: plain-ca\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let Resource::Secret(secret) = &parsed.resources[0].resource else {
            panic!("not a secret")
        };
        assert_eq!(secret.spec.type_.as_deref(), Some("kubernetes.io/tls"));
        assert_eq!(secret.spec.get("tls.crt").unwrap().unwrap(), b"cert");
        assert_eq!(secret.spec.get("ca.crt").unwrap().unwrap(), b"plain-ca");
        assert_eq!(secret.spec.get("missing").unwrap(), None);
    }

    #[test]
    fn bad_base64_and_unknown_fields_are_errors() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {tls.crt: '***'}\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        let Resource::Secret(secret) = &parsed.resources[0].resource else {
            panic!("not a secret")
        };
        assert!(secret
            .spec
            .get("tls.crt")
            .unwrap_err()
            .starts_with("data.tls.crt: not valid base64"));
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nspec: {}\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        assert!(
            parsed.errors[0].message.contains("unknown field `spec`"),
            "{:?}",
            parsed.errors
        );
    }
}
