//! TLS configuration: Gloo's `gloo.solo.io.SslConfig` (downstream TLS termination),
//! `UpstreamSslConfig` (TLS origination), `SSLFiles`, `SDSConfig`, `CallCredentials` and
//! `SslParameters`, mirroring `projects/gloo/api/v1/ssl/ssl.proto`.
//!
//! TLS termination on a virtual service, and TLS origination with client certificates to an
//! upstream:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::ssl::{SslSecretsRef, TlsProtocolVersion};
//! use gloo_core::model::{Resource, ResourceRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: animal
//!   namespace: gloo-system
//! spec:
//!   sslConfig:
//!     secretRef:
//!       name: animal-certs
//!       namespace: gloo-system
//!     sniDomains:
//!     - animalstore.example.com
//!     parameters:
//!       minimumProtocolVersion: TLSv1_2
//!   virtualHost:
//!     domains:
//!     - animalstore.example.com
//! ---
//! apiVersion: gloo.solo.io/v1
//! kind: Upstream
//! metadata:
//!   name: billing
//!   namespace: gloo-system
//! spec:
//!   static:
//!     hosts:
//!     - addr: billing.internal
//!       port: 8443
//!   sslConfig:
//!     sslFiles:
//!       tlsCert: /etc/certs/client.crt
//!       tlsKey: /etc/certs/client.key
//!       rootCa: /etc/certs/ca.crt
//!     sni: billing.internal
//! "#;
//! let parsed = parse_str(yaml, "tls.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//!
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let server = vs.spec.ssl_config.as_ref().ok_or("no sslConfig")?;
//! let certs = ResourceRef::new("gloo-system", "animal-certs");
//! assert_eq!(server.ssl_secrets()?, Some(SslSecretsRef::SecretRef(&certs)));
//! assert_eq!(server.sni_domains, ["animalstore.example.com"]);
//! let parameters = server.parameters.as_ref().ok_or("no parameters")?;
//! assert_eq!(parameters.minimum_protocol_version, Some(TlsProtocolVersion::TlsV1_2));
//!
//! let Resource::Upstream(upstream) = &parsed.resources[1].resource else {
//!     panic!("expected an Upstream");
//! };
//! let client = upstream.spec.ssl_config.as_ref().ok_or("no sslConfig")?;
//! let Some(SslSecretsRef::SslFiles(files)) = client.ssl_secrets()? else {
//!     panic!("expected sslFiles");
//! };
//! assert_eq!(files.root_ca.as_deref(), Some("/etc/certs/ca.crt"));
//! assert_eq!(client.sni.as_deref(), Some("billing.internal"));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

/// Options to configure a virtual host or listener to use TLS termination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslConfig {
    /// `ssl_secrets` oneof: a gloo TLS secret or a Kubernetes TLS secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    /// `ssl_secrets` oneof: paths to certificates local to the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_files: Option<SslFiles>,
    /// `ssl_secrets` oneof: use the secret discovery service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sds: Option<SdsConfig>,
    /// The SNI domains that should be considered for TLS connections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sni_domains: Vec<String>,
    /// Verify that the Subject Alternative Name in the peer certificate is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_subject_alt_name: Vec<String>,
    /// General TLS parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<SslParameters>,
    /// ALPN protocols; empty means `["h2", "http/1.1"]`, `["allow_empty"]` means none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    /// Disable mTLS in favour of server-only TLS even when a root CA is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way_tls: Option<bool>,
    /// Deactivate ticket-based TLS session resumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_tls_session_resumption: Option<bool>,
    /// Time allowed for incoming connections to complete transport socket negotiation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_socket_connect_timeout: Option<Duration>,
    /// The OCSP staple policy for this listener (default `LENIENT_STAPLING`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_staple_policy: Option<OcspStaplePolicy>,
}

/// `SslConfig.OcspStaplePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OcspStaplePolicy {
    /// OCSP responses are optional; expired ones are ignored.
    #[default]
    #[serde(rename = "LENIENT_STAPLING")]
    LenientStapling,
    /// OCSP responses are optional; an expired one disables the certificate.
    #[serde(rename = "STRICT_STAPLING")]
    StrictStapling,
    /// OCSP responses are required.
    #[serde(rename = "MUST_STAPLE")]
    MustStaple,
}

/// Paths to certificates the proxy reads off its local filesystem (`SSLFiles`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslFiles {
    /// Path to the certificate chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<String>,
    /// Path to the private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<String>,
    /// Path to the root CA, for client certificate validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<String>,
    /// Path to a DER-encoded stapled OCSP response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp_staple: Option<String>,
}

/// Options to configure an upstream to use TLS origination.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamSslConfig {
    /// `ssl_secrets` oneof: a gloo TLS secret or a Kubernetes TLS secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<ResourceRef>,
    /// `ssl_secrets` oneof: paths to certificates local to the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_files: Option<SslFiles>,
    /// `ssl_secrets` oneof: use the secret discovery service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sds: Option<SdsConfig>,
    /// The SNI name to send on TLS connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// Verify that the Subject Alternative Name in the peer certificate is one of these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_subject_alt_name: Vec<String>,
    /// General TLS parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<SslParameters>,
    /// ALPN protocols; empty means not set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn_protocols: Vec<String>,
    /// Allow TLS renegotiation (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_renegotiation: Option<bool>,
    /// Disable mTLS in favour of server-only TLS even when a root CA is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way_tls: Option<bool>,
}

/// The `ssl_secrets` oneof of [`SslConfig`] and [`UpstreamSslConfig`]: where certificates come from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SslSecretsRef<'a> {
    /// A gloo or Kubernetes TLS secret.
    SecretRef(&'a ResourceRef),
    /// Files local to the proxy.
    SslFiles(&'a SslFiles),
    /// Secret discovery service.
    Sds(&'a SdsConfig),
}

fn ssl_secrets<'a>(
    secret_ref: Option<&'a ResourceRef>,
    ssl_files: Option<&'a SslFiles>,
    sds: Option<&'a SdsConfig>,
) -> Result<Option<SslSecretsRef<'a>>, OneofError> {
    let mut set = Vec::new();
    let mut found = None;
    if let Some(r) = secret_ref {
        set.push("secretRef");
        found = Some(SslSecretsRef::SecretRef(r));
    }
    if let Some(f) = ssl_files {
        set.push("sslFiles");
        found = Some(SslSecretsRef::SslFiles(f));
    }
    if let Some(s) = sds {
        set.push("sds");
        found = Some(SslSecretsRef::Sds(s));
    }
    if set.len() > 1 {
        return Err(OneofError {
            oneof: "sslSecrets",
            set,
        });
    }
    Ok(found)
}

impl SslConfig {
    /// The certificate source: `secretRef`, `sslFiles` or `sds`; an error if several are set.
    pub fn ssl_secrets(&self) -> Result<Option<SslSecretsRef<'_>>, OneofError> {
        ssl_secrets(
            self.secret_ref.as_ref(),
            self.ssl_files.as_ref(),
            self.sds.as_ref(),
        )
    }
}

impl UpstreamSslConfig {
    /// The certificate source: `secretRef`, `sslFiles` or `sds`; an error if several are set.
    pub fn ssl_secrets(&self) -> Result<Option<SslSecretsRef<'_>>, OneofError> {
        ssl_secrets(
            self.secret_ref.as_ref(),
            self.ssl_files.as_ref(),
            self.sds.as_ref(),
        )
    }
}

/// Secret discovery service configuration (`SDSConfig`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SdsConfig {
    /// Target URI for the SDS channel (a unix domain socket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_uri: Option<String>,
    /// `sds_builder` oneof: call credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_credentials: Option<CallCredentials>,
    /// `sds_builder` oneof: the name of the SDS cluster in Envoy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    /// The name of the secret containing the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificates_secret_name: Option<String>,
    /// The name of the secret containing the validation context (root CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_context_name: Option<String>,
}

/// Call credentials for the SDS channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CallCredentials {
    /// Call credentials come from a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_credential_source: Option<FileCredentialSource>,
}

/// `CallCredentials.FileCredentialSource`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileCredentialSource {
    /// File containing the auth token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file_name: Option<String>,
    /// Header to carry the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

/// General TLS parameters (`SslParameters`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslParameters {
    /// Minimum TLS protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_protocol_version: Option<TlsProtocolVersion>,
    /// Maximum TLS protocol version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_protocol_version: Option<TlsProtocolVersion>,
    /// Cipher suites, in Envoy's syntax.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cipher_suites: Vec<String>,
    /// ECDH curves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecdh_curves: Vec<String>,
}

/// `SslParameters.ProtocolVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TlsProtocolVersion {
    /// Envoy chooses the optimal TLS version.
    #[default]
    #[serde(rename = "TLS_AUTO")]
    TlsAuto,
    /// TLS 1.0.
    #[serde(rename = "TLSv1_0")]
    TlsV1_0,
    /// TLS 1.1.
    #[serde(rename = "TLSv1_1")]
    TlsV1_1,
    /// TLS 1.2.
    #[serde(rename = "TLSv1_2")]
    TlsV1_2,
    /// TLS 1.3.
    #[serde(rename = "TLSv1_3")]
    TlsV1_3,
}

#[cfg(test)]
mod tests {
    use super::*;

    // From docs/content/guides/security/tls/server_tls.md (VirtualService `animal` sslConfig),
    // plus `parameters` / `oneWayTls` as documented in the ssl.proto reference.
    const SERVER_TLS: &str = r#"
secretRef:
  name: animal-certs
  namespace: gloo-system
sniDomains:
- animalstore.example.com
parameters:
  minimumProtocolVersion: TLSv1_2
  maximumProtocolVersion: TLSv1_3
  cipherSuites:
  - ECDHE-RSA-AES128-GCM-SHA256
oneWayTls: true
"#;

    // From docs/content/guides/security/tls/client_tls.md (Upstream
    // `default-example-tls-server-8080` sslConfig), plus an `sni`.
    const CLIENT_TLS: &str = r#"
secretRef:
  name: upstream-tls
  namespace: default
sni: example-tls-server.default.svc
"#;

    #[test]
    fn parses_downstream_ssl_config() {
        let cfg: SslConfig = serde_yaml_ng::from_str(SERVER_TLS).unwrap();
        assert_eq!(cfg.sni_domains, vec!["animalstore.example.com"]);
        assert_eq!(
            cfg.parameters.as_ref().unwrap().minimum_protocol_version,
            Some(TlsProtocolVersion::TlsV1_2)
        );
        assert_eq!(cfg.one_way_tls, Some(true));
        match cfg.ssl_secrets().unwrap() {
            Some(SslSecretsRef::SecretRef(r)) => assert_eq!(r.name, "animal-certs"),
            other => panic!("unexpected {other:?}"),
        }
        let json = serde_json::to_string(&cfg).unwrap();
        let back: SslConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn parses_upstream_ssl_config() {
        let cfg: UpstreamSslConfig = serde_yaml_ng::from_str(CLIENT_TLS).unwrap();
        assert_eq!(cfg.sni.as_deref(), Some("example-tls-server.default.svc"));
        assert!(matches!(
            cfg.ssl_secrets().unwrap(),
            Some(SslSecretsRef::SecretRef(_))
        ));
        let json = serde_json::to_string(&cfg).unwrap();
        let back: UpstreamSslConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(cfg, back);
    }

    #[test]
    fn ssl_files_and_sds() {
        let cfg: UpstreamSslConfig = serde_yaml_ng::from_str(
            "sslFiles:\n  tlsCert: /c.pem\n  tlsKey: /k.pem\n  rootCa: /ca.pem\n",
        )
        .unwrap();
        assert!(matches!(
            cfg.ssl_secrets().unwrap(),
            Some(SslSecretsRef::SslFiles(f)) if f.root_ca.as_deref() == Some("/ca.pem")
        ));
        let both: SslConfig = serde_yaml_ng::from_str(
            "secretRef: {name: a}\nsds:\n  targetUri: 127.0.0.1:8236\n  clusterName: gateway_proxy_sds\n",
        )
        .unwrap();
        let err = both.ssl_secrets().unwrap_err();
        assert_eq!(err.set, vec!["secretRef", "sds"]);
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<UpstreamSslConfig>("sniDomain: x\n").unwrap_err();
        assert!(err.to_string().contains("sniDomain"), "{err}");
    }
}
