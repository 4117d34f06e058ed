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

/// AWS keys held by a Secret, as Gloo reads them.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsSecret {
    /// The access key ID.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for AwsSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecret")
            .field("access_key", &self.access_key)
            .finish_non_exhaustive()
    }
}

impl SecretSpec {
    /// The AWS keys of the Secret, in either of the two layouts Gloo reads (its
    /// `AwsSecretConverter` and `glooctl create secret aws`): `aws_access_key_id`,
    /// `aws_secret_access_key` and optionally `aws_session_token` (what `kubectl create secret
    /// generic` writes); or an `aws` key holding `accessKey`, `secretKey` and optionally
    /// `sessionToken` as YAML or JSON. The access and secret keys must be non-empty text.
    ///
    /// ```
    /// use gloo_core::model::secret::SecretSpec;
    /// let mut secret = SecretSpec::default();
    /// secret.string_data.insert("aws_access_key_id".into(), "AKID".into());
    /// secret.string_data.insert("aws_secret_access_key".into(), "s3cr3t".into());
    /// let aws = secret.aws().unwrap();
    /// assert_eq!((aws.access_key.as_str(), aws.session_token), ("AKID", None));
    /// ```
    pub fn aws(&self) -> Result<AwsSecret, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            match self.get(key)? {
                None => Ok(None),
                Some(bytes) => String::from_utf8(bytes)
                    .map(|s| Some(s.trim().to_string()))
                    .map_err(|_| format!("{key} is not valid text")),
            }
        };
        let (access, secret, token) = if let Some(access) = text("aws_access_key_id")? {
            (
                access,
                text("aws_secret_access_key")?.unwrap_or_default(),
                text("aws_session_token")?,
            )
        } else if let Some(doc) = text("aws")? {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Glooctl {
                #[serde(default, alias = "access_key")]
                access_key: String,
                #[serde(default, alias = "secret_key")]
                secret_key: String,
                #[serde(default, alias = "session_token")]
                session_token: Option<String>,
            }
            let parsed: Glooctl = serde_yaml_ng::from_str(&doc)
                .map_err(|e| format!("aws: not Gloo's AWS secret (accessKey, secretKey): {e}"))?;
            (parsed.access_key, parsed.secret_key, parsed.session_token)
        } else {
            return Err(
                "not an AWS secret: it has neither aws_access_key_id / aws_secret_access_key nor an aws key"
                    .to_string(),
            );
        };
        if access.is_empty() {
            return Err("the AWS access key is empty".into());
        }
        if secret.is_empty() {
            return Err("the AWS secret key is empty (aws_secret_access_key)".into());
        }
        Ok(AwsSecret {
            access_key: access,
            secret_key: secret,
            session_token: token.filter(|t| !t.is_empty()),
        })
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
    fn reads_aws_keys_in_both_of_glooss_layouts() {
        // `kubectl create secret generic aws --from-literal=aws_access_key_id=... ...`
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: aws}\ndata:\n  aws_access_key_id: QUtJRA==\n  aws_secret_access_key: c2VjcmV0\n  aws_session_token: dG9rZW4=\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        let Resource::Secret(secret) = &parsed.resources[0].resource else {
            panic!("not a secret")
        };
        let aws = secret.spec.aws().unwrap();
        assert_eq!(aws.access_key, "AKID");
        assert_eq!(aws.secret_key, "secret");
        assert_eq!(aws.session_token.as_deref(), Some("token"));
        // `glooctl create secret aws`: one `aws` key with Gloo's AwsSecret as YAML.
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: aws, annotations: {resource_kind: '*v1.Secret'}}\nstringData:\n  aws: |\n    accessKey: AKID2\n    secretKey: s2\n";
        let parsed = parse_str(text, "s.yaml", Format::Yaml);
        let Resource::Secret(secret) = &parsed.resources[0].resource else {
            panic!("not a secret")
        };
        let aws = secret.spec.aws().unwrap();
        assert_eq!(
            (aws.access_key.as_str(), aws.secret_key.as_str()),
            ("AKID2", "s2")
        );
        assert!(
            !format!("{aws:?}").contains("s2"),
            "the secret stays out of logs"
        );
        // Neither layout, or an empty secret key: errors that say so.
        let mut spec = crate::model::secret::SecretSpec::default();
        assert!(spec.aws().unwrap_err().contains("not an AWS secret"));
        spec.string_data
            .insert("aws_access_key_id".into(), "A".into());
        assert!(spec.aws().unwrap_err().contains("secret key is empty"));
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
