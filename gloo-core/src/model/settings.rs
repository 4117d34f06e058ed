//! The `Settings` kind: `gloo.solo.io.Settings` and its options messages (`GlooOptions`,
//! `GatewayOptions`, `UpstreamOptions`, `LabelSelector`, ...) from
//! `projects/gloo/api/v1/settings.proto`, plus `gloo.solo.io.Extensions`
//! (`extensions.proto`).
//!
//! The `default` Settings of a Kubernetes install, with upstream and function discovery options
//! and what invalid routes answer:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::settings::{ConfigSourceRef, FdsMode};
//! use gloo_core::model::{Duration, Resource};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Settings
//! metadata:
//!   name: default
//!   namespace: gloo-system
//! spec:
//!   discoveryNamespace: gloo-system
//!   kubernetesConfigSource: {}
//!   kubernetesSecretSource: {}
//!   kubernetesArtifactSource: {}
//!   refreshRate: 60s
//!   discovery:
//!     fdsMode: WHITELIST
//!     udsOptions:
//!       enabled: true
//!       watchLabels:
//!         discovery: enabled
//!   gloo:
//!     xdsBindAddr: 0.0.0.0:9977
//!     invalidConfigPolicy:
//!       replaceInvalidRoutes: true
//!       invalidRouteResponseCode: 404
//!       invalidRouteResponseBody: Gloo Gateway has invalid configuration.
//! "#;
//! let parsed = parse_str(yaml, "settings.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::Settings(settings) = &parsed.resources[0].resource else {
//!     panic!("expected a Settings");
//! };
//! let spec = &settings.spec;
//! assert!(matches!(spec.config_source()?, Some(ConfigSourceRef::Kubernetes(_))));
//! assert_eq!(spec.refresh_rate, Some(Duration::from_secs(60)));
//!
//! let discovery = spec.discovery.as_ref().ok_or("no discovery")?;
//! assert_eq!(discovery.fds_mode, Some(FdsMode::Whitelist));
//! let uds = discovery.uds_options.as_ref().ok_or("no udsOptions")?;
//! assert_eq!(uds.enabled, Some(true));
//! assert_eq!(uds.watch_labels["discovery"], "enabled");
//!
//! let policy = spec.invalid_config_policy().ok_or("no invalidConfigPolicy")?;
//! assert!(policy.replace_invalid_routes);
//! assert_eq!(policy.invalid_route_response_code, Some(404));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::cluster::CircuitBreakerConfig;
use crate::model::routing::OneofError;
use crate::model::ssl::SslParameters;
use crate::model::upstream::{ConsulConsistencyMode, ConsulQueryOptions};
use crate::model::{Duration, ResourceRef};

/// Gloo's global configuration (`gloo.solo.io.Settings` without `metadata` and
/// `namespacedStatuses`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsSpec {
    /// Namespace where Gloo writes discovered resources and looks for its own config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_namespace: Option<String>,
    /// Namespaces Gloo watches; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_namespaces: Vec<String>,
    /// `config_source` oneof: read config from Kubernetes CRDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_config_source: Option<KubernetesCrds>,
    /// `config_source` oneof: read config from a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_config_source: Option<Directory>,
    /// `config_source` oneof: read config from Consul KV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_kv_source: Option<ConsulKv>,
    /// `secret_source` oneof: Kubernetes secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_secret_source: Option<KubernetesSecrets>,
    /// `secret_source` oneof: Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_secret_source: Option<VaultSecrets>,
    /// `secret_source` oneof: a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_secret_source: Option<Directory>,
    /// Several secret sources, merged (overrides `secret_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_options: Option<SecretOptions>,
    /// `artifact_source` oneof: Kubernetes ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_artifact_source: Option<KubernetesConfigmaps>,
    /// `artifact_source` oneof: a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_artifact_source: Option<Directory>,
    /// `artifact_source` oneof: Consul KV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_kv_artifact_source: Option<ConsulKv>,
    /// How often to refresh state from the sources (watches are used where possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_rate: Option<Duration>,
    /// Deprecated: enable the debug endpoint on port 10010.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_mode: Option<bool>,
    /// Enable automatic Linkerd upstream header addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkerd: Option<bool>,
    /// Deprecated Knative integration options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knative: Option<KnativeOptions>,
    /// Discovery (UDS/FDS) options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryOptions>,
    /// Options for the Gloo controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gloo: Option<GlooOptions>,
    /// Options for the Gateway controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayOptions>,
    /// Consul connection options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulConfiguration>,
    /// Consul upstream discovery options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_discovery: Option<ConsulUpstreamDiscoveryConfiguration>,
    /// Kubernetes client options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesConfiguration>,
    /// Opaque configuration for user-compiled plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Extensions>,
    /// Enterprise global rate limit descriptors (`ratelimit.options.gloo.solo.io.ServiceSettings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit: Option<crate::model::ratelimit::ServiceSettings>,
    /// Enterprise rate limit server settings (`ratelimit.options.gloo.solo.io.Settings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratelimit_server: Option<crate::model::ratelimit::Settings>,
    /// Enterprise RBAC settings (`rbac.options.gloo.solo.io.Settings`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<serde_json::Value>,
    /// Enterprise external auth settings (`enterprise.gloo.solo.io.Settings`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauth: Option<crate::model::extauth::Settings>,
    /// Additional named external auth servers (`enterprise.gloo.solo.io.Settings` each).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub named_extauth: BTreeMap<String, crate::model::extauth::Settings>,
    /// Enterprise caching server settings (`caching.options.gloo.solo.io.Settings`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caching_server: Option<serde_json::Value>,
    /// Enterprise observability options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability_options: Option<ObservabilityOptions>,
    /// Defaults applied to all upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_options: Option<UpstreamOptions>,
    /// Enterprise console options (no fields left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_options: Option<ConsoleOptions>,
    /// Enterprise ext_proc settings for the early filter stage (`extproc.options.gloo.solo.io.Settings`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_proc_early: Option<serde_json::Value>,
    /// Enterprise ext_proc settings (`extproc.options.gloo.solo.io.Settings`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_proc: Option<serde_json::Value>,
    /// Enterprise ext_proc settings for the late filter stage (`extproc.options.gloo.solo.io.Settings`).
    /// Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_proc_late: Option<serde_json::Value>,
    /// Label selectors for watched namespaces (with `watchNamespaces`, a union).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watch_namespace_selectors: Vec<LabelSelector>,
    /// Use IPv4-only listeners and DNS resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_v4_only: Option<bool>,
}

/// The `config_source` oneof of [`SettingsSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfigSourceRef<'a> {
    /// Kubernetes CRDs.
    Kubernetes(&'a KubernetesCrds),
    /// A directory.
    Directory(&'a Directory),
    /// Consul KV.
    ConsulKv(&'a ConsulKv),
}

/// The `secret_source` oneof of [`SettingsSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SecretSourceRef<'a> {
    /// Kubernetes secrets.
    Kubernetes(&'a KubernetesSecrets),
    /// Vault.
    Vault(&'a VaultSecrets),
    /// A directory.
    Directory(&'a Directory),
}

/// The `artifact_source` oneof of [`SettingsSpec`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArtifactSourceRef<'a> {
    /// Kubernetes ConfigMaps.
    Kubernetes(&'a KubernetesConfigmaps),
    /// A directory.
    Directory(&'a Directory),
    /// Consul KV.
    ConsulKv(&'a ConsulKv),
}

impl SettingsSpec {
    /// Where config is read from; an error if several sources are set.
    pub fn config_source(&self) -> Result<Option<ConfigSourceRef<'_>>, OneofError> {
        OneofError::check(
            "configSource",
            &[
                (
                    "kubernetesConfigSource",
                    self.kubernetes_config_source.is_some(),
                ),
                (
                    "directoryConfigSource",
                    self.directory_config_source.is_some(),
                ),
                ("consulKvSource", self.consul_kv_source.is_some()),
            ],
        )?;
        Ok(self
            .kubernetes_config_source
            .as_ref()
            .map(ConfigSourceRef::Kubernetes)
            .or(self
                .directory_config_source
                .as_ref()
                .map(ConfigSourceRef::Directory))
            .or(self
                .consul_kv_source
                .as_ref()
                .map(ConfigSourceRef::ConsulKv)))
    }

    /// Where secrets are read from; an error if several sources are set.
    pub fn secret_source(&self) -> Result<Option<SecretSourceRef<'_>>, OneofError> {
        OneofError::check(
            "secretSource",
            &[
                (
                    "kubernetesSecretSource",
                    self.kubernetes_secret_source.is_some(),
                ),
                ("vaultSecretSource", self.vault_secret_source.is_some()),
                (
                    "directorySecretSource",
                    self.directory_secret_source.is_some(),
                ),
            ],
        )?;
        Ok(self
            .kubernetes_secret_source
            .as_ref()
            .map(SecretSourceRef::Kubernetes)
            .or(self
                .vault_secret_source
                .as_ref()
                .map(SecretSourceRef::Vault))
            .or(self
                .directory_secret_source
                .as_ref()
                .map(SecretSourceRef::Directory)))
    }

    /// Where artifacts are read from; an error if several sources are set.
    pub fn artifact_source(&self) -> Result<Option<ArtifactSourceRef<'_>>, OneofError> {
        OneofError::check(
            "artifactSource",
            &[
                (
                    "kubernetesArtifactSource",
                    self.kubernetes_artifact_source.is_some(),
                ),
                (
                    "directoryArtifactSource",
                    self.directory_artifact_source.is_some(),
                ),
                (
                    "consulKvArtifactSource",
                    self.consul_kv_artifact_source.is_some(),
                ),
            ],
        )?;
        Ok(self
            .kubernetes_artifact_source
            .as_ref()
            .map(ArtifactSourceRef::Kubernetes)
            .or(self
                .directory_artifact_source
                .as_ref()
                .map(ArtifactSourceRef::Directory))
            .or(self
                .consul_kv_artifact_source
                .as_ref()
                .map(ArtifactSourceRef::ConsulKv)))
    }

    /// `gloo.invalidConfigPolicy`, if set.
    pub fn invalid_config_policy(&self) -> Option<&InvalidConfigPolicy> {
        self.gloo.as_ref()?.invalid_config_policy.as_ref()
    }
}

/// `Settings.KubernetesCrds` (no fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesCrds {}

/// `Settings.KubernetesSecrets` (no fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSecrets {}

/// `Settings.KubernetesConfigmaps` (no fields).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesConfigmaps {}

/// `Settings.Directory`: watch a directory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Directory {
    /// The directory's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// `Settings.ConsulKv`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulKv {
    /// Root key for Gloo resources (default `gloo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key: Option<String>,
}

/// `Settings.SecretOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretOptions {
    /// Secret sources, merged in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SecretSource>,
}

/// `Settings.SecretOptions.Source` (`source` oneof).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSource {
    /// `source` oneof: Kubernetes secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSecrets>,
    /// `source` oneof: Vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<VaultSecrets>,
    /// `source` oneof: a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<Directory>,
}

/// `Settings.VaultSecrets`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultSecrets {
    /// Deprecated: the Vault token (use `accessToken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Vault server address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Deprecated: CA cert path (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// Deprecated: CA directory path (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    /// Deprecated: client cert path (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Deprecated: client key path (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// Deprecated: TLS server name (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Deprecated: skip TLS verification (use `tlsConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Root key for Gloo secrets in Vault (default `gloo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_key: Option<String>,
    /// Path prefix of the KV engine (default `secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// TLS options for the Vault connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_config: Option<VaultTlsConfig>,
    /// `auth_method` oneof: a Vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// `auth_method` oneof: AWS IAM auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<VaultAwsAuth>,
}

/// `Settings.VaultAwsAuth`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultAwsAuth {
    /// Vault role to log in as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_role: Option<String>,
    /// AWS region for STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// `X-Vault-AWS-IAM-Server-ID` header value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_server_id_header: Option<String>,
    /// Mount path of the AWS auth method (default `aws`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// AWS access key ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// AWS secret access key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// AWS session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// Seconds to extend the token lease by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_increment: Option<i32>,
}

/// `Settings.VaultTlsConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultTlsConfig {
    /// CA cert path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<String>,
    /// CA directory path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    /// Client cert path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Client key path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
    /// TLS server name (SNI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
}

/// `Settings.KnativeOptions` (deprecated).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KnativeOptions {
    /// Address of the cluster ingress proxy (Knative < 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_ingress_proxy_address: Option<String>,
    /// Address of the external proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knative_external_proxy_address: Option<String>,
    /// Address of the internal proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knative_internal_proxy_address: Option<String>,
}

/// `Settings.DiscoveryOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoveryOptions {
    /// Function discovery mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_mode: Option<FdsMode>,
    /// Upstream discovery options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uds_options: Option<UdsOptions>,
    /// Function discovery options (no fields left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fds_options: Option<FdsOptions>,
}

/// `DiscoveryOptions.FdsMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FdsMode {
    /// Discover functions on all upstreams except those labelled `discovery.solo.io/function_discovery=disabled`.
    #[default]
    Blacklist,
    /// Discover functions only on upstreams labelled `discovery.solo.io/function_discovery=enabled`.
    Whitelist,
    /// Function discovery disabled.
    Disabled,
}

/// `DiscoveryOptions.UdsOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdsOptions {
    /// Enable upstream discovery (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Only discover services with these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub watch_labels: BTreeMap<String, String>,
}

/// `DiscoveryOptions.FdsOptions` (no fields left).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FdsOptions {}

/// `Settings.ConsulConfiguration`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulConfiguration {
    /// Deprecated: Consul server address (use `httpAddress`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Datacenter to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// HTTP basic auth user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic auth password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// ACL token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// CA file for TLS to Consul.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// CA directory for TLS to Consul.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_path: Option<String>,
    /// Client cert for TLS to Consul.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<String>,
    /// Client key for TLS to Consul.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<String>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    /// Blocking query wait time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_time: Option<Duration>,
    /// Enable Consul service discovery (presence enables it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_discovery: Option<ConsulServiceDiscoveryOptions>,
    /// Consul HTTP API address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_address: Option<String>,
    /// Consul DNS address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_address: Option<String>,
    /// How often to re-resolve DNS names of Consul endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_polling_interval: Option<Duration>,
}

/// `ConsulConfiguration.ServiceDiscoveryOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulServiceDiscoveryOptions {
    /// Datacenters to discover in; empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_centers: Vec<String>,
}

/// `Settings.ConsulUpstreamDiscoveryConfiguration`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulUpstreamDiscoveryConfiguration {
    /// Use TLS for services tagged with `tlsTagName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_tls_tagging: Option<bool>,
    /// The tag marking TLS services (default `glooUseTls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_tag_name: Option<String>,
    /// Secret holding the root CA for TLS services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_ca: Option<ResourceRef>,
    /// Create separate TLS and non-TLS upstreams for mixed services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_tls_services: Option<bool>,
    /// Consistency mode of the discovery queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_mode: Option<ConsulConsistencyMode>,
    /// Consul query options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_options: Option<ConsulQueryOptions>,
    /// Only discover services with one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_tags_allowlist: Vec<String>,
    /// Use blocking queries for EDS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eds_blocking_queries: Option<bool>,
}

/// `Settings.KubernetesConfiguration`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesConfiguration {
    /// Kubernetes API client rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<KubernetesRateLimits>,
}

/// `KubernetesConfiguration.RateLimits`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesRateLimits {
    /// Maximum queries per second to the API server (default 50). The proto field is `QPS`;
    /// Gloo's reference docs spell it `qPS`, both are accepted.
    #[serde(
        rename = "QPS",
        alias = "qPS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub qps: Option<f64>,
    /// Maximum burst (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// `gloo.solo.io.Extensions`: opaque config for user-compiled plugins.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Extensions {
    /// Config by plugin name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub configs: BTreeMap<String, serde_json::Value>,
}

/// `Settings.ObservabilityOptions` (Enterprise).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservabilityOptions {
    /// Grafana integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grafana_integration: Option<GrafanaIntegration>,
    /// Labels for config status metrics, by resource kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config_status_metric_labels: BTreeMap<String, MetricLabels>,
}

/// `ObservabilityOptions.GrafanaIntegration`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrafanaIntegration {
    /// Grafana folder ID for generated dashboards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_dashboard_folder_id: Option<u32>,
    /// Prefix of generated dashboard names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_prefix: Option<String>,
    /// Extra query parameters for dashboard metric queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_metric_query_parameters: Option<String>,
}

/// `ObservabilityOptions.MetricLabels`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricLabels {
    /// Label name to JSON path in the resource.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_to_path: BTreeMap<String, String>,
}

/// `gloo.solo.io.LabelSelector`: a Kubernetes-style label selector.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels that must all match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions that must all match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `gloo.solo.io.LabelSelectorRequirement`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// The label key.
    #[serde(default)]
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    #[serde(default)]
    pub operator: String,
    /// Values for `In` / `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `gloo.solo.io.UpstreamOptions`: defaults for all upstreams.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamOptions {
    /// Default TLS parameters of upstream TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssl_parameters: Option<SslParameters>,
    /// Annotations applied to all upstreams (Kubernetes service annotation syntax).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub global_annotations: BTreeMap<String, String>,
}

/// `gloo.solo.io.ConsoleOptions` (no fields left).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsoleOptions {}

/// `gloo.solo.io.GlooOptions`: options for the Gloo controller and translation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlooOptions {
    /// xDS server bind address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xds_bind_addr: Option<String>,
    /// Validation server bind address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_bind_addr: Option<String>,
    /// Default circuit breakers for upstreams that set none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakerConfig>,
    /// Timeout to wait for endpoints before serving xDS (default 5m; 0 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints_warming_timeout: Option<Duration>,
    /// AWS options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_options: Option<AwsOptions>,
    /// How to handle invalid configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_config_policy: Option<InvalidConfigPolicy>,
    /// Disable routing directly to Kubernetes services (`kube` destinations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_kubernetes_destinations: Option<bool>,
    /// Disable the gRPC-Web filter (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_grpc_web: Option<bool>,
    /// Disable garbage collection of proxies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_proxy_garbage_collection: Option<bool>,
    /// Maximum regex program size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex_max_program_size: Option<u32>,
    /// REST xDS server bind address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_xds_bind_addr: Option<String>,
    /// Use REST EDS instead of gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_rest_eds: Option<bool>,
    /// DNS polling interval for failover endpoints (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_upstream_dns_polling_interval: Option<Duration>,
    /// Do not add HTTP filters that no route uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_unused_filters: Option<bool>,
    /// Proxy debug server bind address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_debug_bind_addr: Option<String>,
    /// Log transformation requests/responses at debug level (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_transformation_request_response_info: Option<bool>,
    /// Default for `escapeCharacters` in transformation templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transformation_escape_characters: Option<bool>,
    /// Istio integration options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub istio_options: Option<IstioOptions>,
    /// Pass websocket upgrades through transformations automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_websocket_transformation_passthrough: Option<bool>,
}

/// `GlooOptions.InvalidConfigPolicy`: how invalid routes are handled.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvalidConfigPolicy {
    /// Replace invalid routes with a direct response instead of rejecting the whole proxy.
    #[serde(default)]
    pub replace_invalid_routes: bool,
    /// Status code of the replacement response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_route_response_code: Option<u32>,
    /// Body of the replacement response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_route_response_body: Option<String>,
}

/// `GlooOptions.AWSOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsOptions {
    /// `credentials_fetcher` oneof: discover credentials from the environment
    /// (the proto's spelling, `enableCredentialsDiscovey`).
    #[serde(
        rename = "enableCredentialsDiscovey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_credentials_discovery: Option<bool>,
    /// `credentials_fetcher` oneof: use a Kubernetes service account (IRSA) via STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_credentials: Option<ServiceAccountCredentials>,
    /// Send `x-envoy-original-path` / `x-envoy-original-method` to Lambda.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_original_routing: Option<bool>,
    /// Cadence for refreshing service account credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_refresh_delay: Option<Duration>,
    /// Route to the first function when no function is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_to_first_function: Option<bool>,
}

/// `envoy.config.filter.http.aws_lambda.v2.AWSLambdaConfig.ServiceAccountCredentials`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountCredentials {
    /// Envoy cluster of the AWS STS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Full URI of the STS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Request timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Region of the STS endpoint (default us-east-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `GlooOptions.IstioOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IstioOptions {
    /// Deprecated: append `x-forwarded-host` to Istio-bound requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append_x_forwarded_host: Option<bool>,
    /// Enable automatic mTLS to Istio upstreams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_auto_mtls: Option<bool>,
    /// Enable the Istio integration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_integration: Option<bool>,
}

/// `gloo.solo.io.VirtualServiceOptions`: defaults for virtual services.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceOptions {
    /// Default `oneWayTls` for virtual service `sslConfig`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_way_tls: Option<bool>,
}

/// `gloo.solo.io.GatewayOptions`: options for the Gateway controller.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayOptions {
    /// Deprecated: address of the Gloo validation server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_server_addr: Option<String>,
    /// Resource validation options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationOptions>,
    /// Read Gateways from all watched namespaces, not just the install namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_gateways_from_all_namespaces: Option<bool>,
    /// Deprecated: sort route table routes by path specificity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_sort_route_table_routes: Option<bool>,
    /// Compress the stored proxy spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressed_proxy_spec: Option<bool>,
    /// Defaults for virtual services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_service_options: Option<VirtualServiceOptions>,
    /// Persist proxies to storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist_proxy_spec: Option<bool>,
    /// Enable the Gateway controller (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_gateway_controller: Option<bool>,
    /// Put virtual services with different `sslConfig`s on separate filter chains' hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolate_virtual_hosts_by_ssl_config: Option<bool>,
    /// Translate gateways without routes into listeners anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translate_empty_gateways: Option<bool>,
}

/// `GatewayOptions.ValidationOptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidationOptions {
    /// Address of the Gloo proxy validation gRPC server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_validation_server_addr: Option<String>,
    /// Path of the validation webhook's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_webhook_tls_cert: Option<String>,
    /// Path of the validation webhook's TLS key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_webhook_tls_key: Option<String>,
    /// Deprecated: ignore Gloo validation failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_gloo_validation_failure: Option<bool>,
    /// Accept resources even when they fail validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_accept: Option<bool>,
    /// Accept resources with warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_warnings: Option<bool>,
    /// Deprecated: warn about routes short-circuited by earlier ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_route_short_circuiting: Option<bool>,
    /// Skip transformation validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_transformation_validation: Option<bool>,
    /// Maximum gRPC message size of the validation server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_server_grpc_max_size_bytes: Option<i32>,
    /// Enable the validation server (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_enabled: Option<bool>,
    /// Report a missing TLS secret as a warning rather than an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warn_missing_tls_secret: Option<bool>,
    /// Validate the generated Envoy config with Envoy itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_envoy_validation: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(doc: &str) -> SettingsSpec {
        #[derive(Deserialize)]
        #[allow(dead_code)]
        struct Doc {
            #[serde(rename = "apiVersion")]
            api_version: String,
            kind: String,
            #[serde(default)]
            metadata: serde_json::Value,
            spec: SettingsSpec,
        }
        let d: Doc = serde_yaml_ng::from_str(doc).unwrap();
        assert_eq!(d.kind, "Settings");
        let json = serde_json::to_string(&d.spec).unwrap();
        let back: SettingsSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(d.spec, back, "JSON round trip");
        d.spec
    }

    // docs/content/guides/traffic_management/configuration_validation/invalid_route_replacement.md
    // (the doc's `# ...` metadata elision kept).
    const INVALID_ROUTES: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Settings
# ...
spec:
  devMode: true
  discoveryNamespace: gloo-system
  gateway:
    validation:
      alwaysAccept: true
      proxyValidationServerAddr: gloo:9988
  gloo:
    invalidConfigPolicy:
      invalidRouteResponseBody: Gloo Gateway has invalid configuration. Administrators
        should run `glooctl check` to find and fix config errors.
      invalidRouteResponseCode: 404
      replaceInvalidRoutes: true
    xdsBindAddr: 0.0.0.0:9977
  kubernetesArtifactSource: {}
  kubernetesConfigSource: {}
  kubernetesSecretSource: {}
  refreshRate: 60s
"#;

    // docs/content/guides/security/auth/custom_auth/_index.md
    const CUSTOM_AUTH: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Settings
metadata:
  name: default
  namespace: gloo-system
spec:
  discoveryNamespace: gloo-system
  gateway:
    validation:
      alwaysAccept: true
      proxyValidationServerAddr: gloo:9988
  gloo:
    xdsBindAddr: 0.0.0.0:9977
  kubernetesArtifactSource: {}
  kubernetesConfigSource: {}
  kubernetesSecretSource: {}
  refreshRate: 60s
  extauth:
   extauthzServerRef:
     name: auth-server
     namespace: gloo-system
   httpService:
     request:
       allowedHeaders:
       - "X-foo"
   requestBody:
     maxRequestBytes: 10240
   requestTimeout: 0.5s
"#;

    // docs/content/guides/traffic_management/destination_types/consul_services/_index.md
    // (the doc's `...` elisions dropped).
    const CONSUL: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Settings
metadata:
  labels:
    app: gloo
  name: default
  namespace: gloo-system
spec:
  consul:
    address: gloo-consul-server.default:8500
    serviceDiscovery: {}
  discovery:
    fdsMode: WHITELIST
"#;

    // docs/content/guides/security/auth/extauth/_index.md (the doc's `...` elisions dropped).
    const EXTAUTH_RATELIMIT_SERVER: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Settings
metadata:
  labels:
    app: gloo
    gloo: settings
  name: default
  namespace: gloo-system
spec:
  discoveryNamespace: gloo-system
  extauth:
    extauthzServerRef:
      name: extauth
      namespace: gloo-system
  gateway:
    validation:
      alwaysAccept: true
      proxyValidationServerAddr: gloo:9988
  gloo:
    xdsBindAddr: 0.0.0.0:9977
  kubernetesArtifactSource: {}
  kubernetesConfigSource: {}
  kubernetesSecretSource: {}
  ratelimitServer:
    ratelimitServerRef:
      name: rate-limit
      namespace: gloo-system
  refreshRate: 60s
"#;

    // docs/content/guides/security/rate_limiting/set/_index.md (the doc's `# etc...` kept).
    const SET_DESCRIPTORS: &str = r#"
apiVersion: gloo.solo.io/v1
kind: Settings
metadata:
  name: default
  namespace: gloo-system
  # etc...
spec:
  ratelimit:
    setDescriptors:
    - simpleDescriptors:
      - key: type
        value: a
      - key: number
        value: one
      rateLimit:
        requestsPerUnit: 1
        unit: MINUTE
  # etc...
"#;

    #[test]
    fn parses_ratelimit_settings() {
        let spec = spec_of(EXTAUTH_RATELIMIT_SERVER);
        let rls = spec.ratelimit_server.as_ref().unwrap();
        assert_eq!(
            rls.ratelimit_server_ref.as_ref().unwrap().name,
            "rate-limit"
        );
        assert_eq!(
            spec.extauth.unwrap().extauthz_server_ref.unwrap().name,
            "extauth"
        );
        let spec = spec_of(SET_DESCRIPTORS);
        assert_eq!(spec.ratelimit.unwrap().set_descriptors.len(), 1);
    }

    #[test]
    fn parses_invalid_config_policy() {
        let spec = spec_of(INVALID_ROUTES);
        assert_eq!(spec.dev_mode, Some(true));
        assert_eq!(spec.refresh_rate, Some(Duration::from_secs(60)));
        let policy = spec.invalid_config_policy().unwrap();
        assert!(policy.replace_invalid_routes);
        assert_eq!(policy.invalid_route_response_code, Some(404));
        assert!(policy
            .invalid_route_response_body
            .as_deref()
            .unwrap()
            .starts_with("Gloo Gateway has invalid configuration. Administrators should run"));
        let gw = spec.gateway.as_ref().unwrap().validation.as_ref().unwrap();
        assert_eq!(gw.always_accept, Some(true));
        assert_eq!(
            gw.proxy_validation_server_addr.as_deref(),
            Some("gloo:9988")
        );
        assert!(matches!(
            spec.config_source().unwrap(),
            Some(ConfigSourceRef::Kubernetes(_))
        ));
        assert!(matches!(
            spec.secret_source().unwrap(),
            Some(SecretSourceRef::Kubernetes(_))
        ));
        assert!(matches!(
            spec.artifact_source().unwrap(),
            Some(ArtifactSourceRef::Kubernetes(_))
        ));
    }

    #[test]
    fn parses_extauth_and_consul_settings() {
        let spec = spec_of(CUSTOM_AUTH);
        let extauth = spec.extauth.as_ref().unwrap();
        assert_eq!(
            extauth.extauthz_server_ref.as_ref().unwrap().name,
            "auth-server"
        );
        assert_eq!(extauth.request_timeout, Some(Duration::from_millis(500)));
        assert_eq!(
            spec.gloo.as_ref().unwrap().xds_bind_addr.as_deref(),
            Some("0.0.0.0:9977")
        );

        let spec = spec_of(CONSUL);
        let consul = spec.consul.as_ref().unwrap();
        assert_eq!(
            consul.address.as_deref(),
            Some("gloo-consul-server.default:8500")
        );
        assert!(consul.service_discovery.is_some());
        assert_eq!(spec.discovery.unwrap().fds_mode, Some(FdsMode::Whitelist));
    }

    #[test]
    fn directory_sources_and_kubernetes_qps() {
        let spec: SettingsSpec = serde_yaml_ng::from_str(
            "directoryConfigSource: {directory: /etc/gloo}\n\
             kubernetesConfigSource: {}\n\
             kubernetes:\n  rateLimits:\n    QPS: 100.5\n    burst: 200\n",
        )
        .unwrap();
        let err = spec.config_source().unwrap_err();
        assert_eq!(
            err.set,
            vec!["kubernetesConfigSource", "directoryConfigSource"]
        );
        let rl = spec.kubernetes.unwrap().rate_limits.unwrap();
        assert_eq!((rl.qps, rl.burst), (Some(100.5), Some(200)));
    }

    #[test]
    fn rejects_unknown_field() {
        let err =
            serde_yaml_ng::from_str::<SettingsSpec>("gloo:\n  xdsBindAddress: x\n").unwrap_err();
        assert!(err.to_string().contains("xdsBindAddress"), "{err}");
    }
}
