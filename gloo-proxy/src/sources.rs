//! Where `gloo run` and `gloo control-plane` take their config from, and the discovery they
//! run, as Gloo's Settings say.
//!
//! **Settings.** The `--config` directory is always loaded and watched; Gloo's `Settings` are
//! read from it once at start (the one named `gloo-system/default`, else the first). What they
//! say about sources and discovery applies until the process restarts (Gloo restarts its pods
//! on a Settings change too); the rest of the Settings (rate limit server, extauth, ...) is
//! translated like any resource, on every change.
//!
//! **Config sources** (Settings' `config_source` oneof), always beside the directory's own
//! resources:
//! - `kubernetesConfigSource: {}`: Gloo's CRDs, Secrets and ConfigMaps (Gloo's Artifacts: OPA
//!   modules, WAF rules) from the API server (feature
//!   `kubernetes`), in `watchNamespaces` (all when empty), with Ingresses when `--ingress` is
//!   given. Their statuses are written back to the resources (`status.statuses.<ns>`, the
//!   reporter namespace being `discoveryNamespace`, default `gloo-system`); what an Ingress
//!   asks for that is not served becomes a `Warning` Event on it. As Gloo's ingress
//!   controller, every Ingress is read unless the environment says `REQUIRE_INGRESS_CLASS=true`
//!   (or `1`): then only those of class `gloo`, or `CUSTOM_INGRESS_CLASS` when set.
//! - `consulKvSource: {rootKey}`: Gloo resources from Consul KV (feature `consul`), through the
//!   agent `consul` names.
//! - `directoryConfigSource: {directory}`: another directory (relative to `--config`), also
//!   watched.
//!
//! **Discovery** ([`DiscoveryRunner`] with these plugins; `--no-discovery` runs none, as
//! Gloo's Helm value `discovery.enabled: false` does):
//! - Kubernetes (feature `kubernetes`) whenever a cluster is in use (a
//!   `kubernetesConfigSource`, `--kubeconfig` or `--kubernetes`): Services become upstreams
//!   unless `discovery.udsOptions.enabled: false` (with `udsOptions.watchLabels`), and `kube`
//!   upstreams get their EndpointSlices' endpoints, in `watchNamespaces`, written to
//!   `discoveryNamespace`;
//! - Consul (feature `consul`) when `consul.serviceDiscovery` is set: `consul-svc:<name>`
//!   upstreams and their instances, from the agent at `consul.httpAddress` (or
//!   `--consul-address`), with `consul.datacenter` and `consul.token` (else the
//!   `CONSUL_HTTP_TOKEN` environment variable, as Consul's own tools read it);
//! - EC2 (feature `ec2`): endpoints of `awsEc2` upstreams;
//! - Lambda (feature `lambda`) unless `discovery.fdsMode: DISABLED`: functions of `aws`
//!   upstreams;
//! - any plugin an embedding application adds ([`SourceOptions::plugins`]).
//!
//! The Kubernetes client comes from `--kubeconfig` when given, else as `kubectl` finds it
//! (`KUBECONFIG`, `~/.kube/config`, then the in-cluster service account).
//!
//! Deviations from Gloo: the `config_source` oneof is not exclusive of the directory (the
//! directory's resources are always in force beside it); Settings are not read from the
//! Kubernetes source (the directory holds them); `kubernetes.rateLimits` (client QPS and
//! burst) is not applied (kube-rs has no client-side limiter: watches make few requests); a
//! Settings change to the fields above needs a restart.
//!
//! ```
//! use gloo_core::model::settings::FdsMode;
//! use gloo_proxy::sources::{fds_mode, write_namespace, SourceOptions, Sources};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("settings.yaml"),
//!     r#"
//! apiVersion: gloo.solo.io/v1
//! kind: Settings
//! metadata: {name: default, namespace: gloo-system}
//! spec:
//!   discoveryNamespace: discovered
//!   discovery: {fdsMode: DISABLED}
//! "#,
//! )?;
//! // `gloo run --config DIR --no-discovery`: the directory's resources, no plugin.
//! let options = SourceOptions {
//!     no_discovery: true,
//!     ..SourceOptions::default()
//! };
//! let sources = Sources::start(dir.path(), options).await?;
//! assert!(sources.plugins().is_empty());
//! assert_eq!(write_namespace(sources.settings()), "discovered");
//! assert_eq!(fds_mode(sources.settings()), FdsMode::Disabled);
//! // Everything in force (here the Settings alone), as the control plane translates it.
//! assert_eq!(sources.subscribe().borrow().resources.len(), 1);
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gloo_core::model::settings::{FdsMode, SettingsSpec};
use gloo_core::scope::settings_in_force;
use gloo_core::source::{ConfigSource, DirectorySource, MergedSource, SourceError, SourceSnapshot};
use gloo_core::status::Reports;
use gloo_core::translate::Endpoints;
use gloo_discovery::{Discovery, DiscoveryRunner, EndpointUpdates, RunningDiscovery};
use tokio::sync::watch;

/// What the command line adds to the Settings.
///
/// An application's own discovery plugin runs beside gloo's (see [`Discovery`] for writing
/// one):
///
/// ```no_run
/// use std::sync::Arc;
/// use gloo_proxy::control_plane::ControlPlane;
/// use gloo_proxy::sources::SourceOptions;
/// # use gloo_discovery::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError};
/// # struct ServiceRegistry;
/// # impl Discovery for ServiceRegistry {
/// #     fn name(&self) -> &str {
/// #         "registry"
/// #     }
/// #     fn run(
/// #         self: Arc<Self>,
/// #         _: DiscoveryContext,
/// #     ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
/// #         Box::pin(std::future::pending())
/// #     }
/// # }
///
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let options = SourceOptions {
///     plugins: vec![Arc::new(ServiceRegistry)],
///     ..SourceOptions::default()
/// };
/// let control_plane = ControlPlane::start_with("gloo-config".as_ref(), None, options).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct SourceOptions {
    /// The kubeconfig to connect with (default: `KUBECONFIG`, `~/.kube/config`, in-cluster);
    /// giving one also turns Kubernetes discovery on.
    pub kubeconfig: Option<PathBuf>,
    /// Use the cluster (discovery) even when the Settings name no Kubernetes config source.
    pub kubernetes: bool,
    /// Translate Kubernetes Ingresses too (with a `kubernetesConfigSource`), as Gloo's ingress
    /// controller does.
    pub ingress: bool,
    /// The Consul agent (`host:port` or URL), in place of `consul.httpAddress`.
    pub consul_address: Option<String>,
    /// Run no discovery plugin (config sources still run).
    pub no_discovery: bool,
    /// Plugins of the embedding application, run beside gloo's own.
    pub plugins: Vec<Arc<dyn Discovery>>,
}

impl std::fmt::Debug for SourceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceOptions")
            .field("kubeconfig", &self.kubeconfig)
            .field("kubernetes", &self.kubernetes)
            .field("ingress", &self.ingress)
            .field("consul_address", &self.consul_address)
            .field("no_discovery", &self.no_discovery)
            .field(
                "plugins",
                &self.plugins.iter().map(|p| p.name()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Why the sources could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A directory could not be read or watched.
    #[error(transparent)]
    Directory(#[from] SourceError),
    /// The Settings ask for something this build or setup cannot do; names the field.
    #[error("{0}")]
    Settings(String),
    /// The Kubernetes client could not be set up.
    #[error("kubernetes: {0}")]
    Kubernetes(String),
    /// The Consul client could not be set up.
    #[error("consul: {0}")]
    Consul(String),
    /// The AWS client could not be set up.
    #[error("aws: {0}")]
    Aws(String),
}

/// Running config sources and discovery: a [`ConfigSource`] of everything in force, the
/// discovered endpoints, and (with a Kubernetes config source) where statuses go.
pub struct Sources {
    running: RunningDiscovery,
    settings: SettingsSpec,
    plugins: Vec<String>,
    #[cfg(feature = "kubernetes")]
    status_writer: Option<Arc<gloo_discovery::kubernetes::StatusWriter>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("source", &self.running.name())
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl Sources {
    /// The directory alone, with the given plugins (no Settings read): what
    /// [`ControlPlane::start`](crate::control_plane::ControlPlane::start) serves.
    pub fn directory(dir: &Path, plugins: Vec<Arc<dyn Discovery>>) -> Result<Self, SourcesError> {
        let directory: Arc<dyn ConfigSource> = Arc::new(DirectorySource::watch(dir)?);
        Ok(Self::run(directory, plugins, SettingsSpec::default()))
    }

    /// Starts what the Settings in `dir` and `options` ask for (see the module docs).
    pub async fn start(dir: &Path, options: SourceOptions) -> Result<Self, SourcesError> {
        let directory = Arc::new(DirectorySource::watch(dir)?);
        let mut settings = settings_of(&directory.subscribe().borrow());
        if let Some(address) = options.consul_address.as_ref().filter(|a| !a.is_empty()) {
            settings
                .consul
                .get_or_insert_with(Default::default)
                .http_address = Some(address.clone());
        }
        if let Some(consul) = settings.consul.as_mut() {
            if consul.token.as_deref().is_none_or(str::is_empty) {
                consul.token = std::env::var("CONSUL_HTTP_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty());
            }
        }
        let mut sources: Vec<Arc<dyn ConfigSource>> = vec![directory];
        let mut plugins: Vec<Arc<dyn Discovery>> = Vec::new();

        if let Some(other) = settings
            .directory_config_source
            .as_ref()
            .and_then(|d| d.directory.as_deref())
            .filter(|d| !d.is_empty())
        {
            let other = dir.join(other);
            let same = match (other.canonicalize(), dir.canonicalize()) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                sources.push(Arc::new(DirectorySource::watch(&other)?));
            }
        }

        let uses_kubernetes = settings.kubernetes_config_source.is_some()
            || options.kubeconfig.is_some()
            || options.kubernetes;
        #[cfg(feature = "kubernetes")]
        let mut status_writer = None;
        if uses_kubernetes {
            #[cfg(feature = "kubernetes")]
            {
                use gloo_discovery::kubernetes::{
                    KubernetesDiscovery, KubernetesSource, StatusWriter,
                };
                let client = kube_client(options.kubeconfig.as_deref()).await?;
                let write_namespace = write_namespace(&settings);
                if settings.kubernetes_config_source.is_some() {
                    let kinds = gloo_core::model::Kind::ALL
                        .iter()
                        .copied()
                        .filter(|k| *k != gloo_core::model::Kind::Settings);
                    let mut builder = KubernetesSource::builder(client.clone())
                        .watch_namespaces(
                            gloo_core::scope::WatchScope::from_settings(&settings).namespaces(),
                        )
                        .kinds(kinds);
                    if options.ingress {
                        builder = builder.ingress(ingress_options(&write_namespace, |name| {
                            std::env::var(name).ok()
                        }));
                    }
                    sources.push(Arc::new(builder.start()));
                    status_writer =
                        Some(Arc::new(StatusWriter::new(client.clone(), write_namespace)));
                }
                if !options.no_discovery {
                    plugins.push(Arc::new(KubernetesDiscovery::from_settings(
                        client, &settings,
                    )));
                }
            }
            #[cfg(not(feature = "kubernetes"))]
            return Err(SourcesError::Settings(
                "settings.kubernetesConfigSource (or --kubeconfig / --kubernetes): this gloo was built without the `kubernetes` feature".into(),
            ));
        } else if options.ingress {
            return Err(SourcesError::Settings(
                "--ingress needs settings.kubernetesConfigSource".into(),
            ));
        }

        if let Some(kv) = &settings.consul_kv_source {
            #[cfg(feature = "consul")]
            {
                use gloo_discovery::consul::{ConsulClient, ConsulConfig, ConsulKvSource};
                let config =
                    ConsulConfig::from_settings(&settings.consul.clone().unwrap_or_default())
                        .map_err(|e| SourcesError::Consul(e.to_string()))?;
                let client =
                    ConsulClient::new(config).map_err(|e| SourcesError::Consul(e.to_string()))?;
                let root = ConsulKvSource::root_key(kv).to_string();
                sources.push(Arc::new(ConsulKvSource::start(client, root)));
            }
            #[cfg(not(feature = "consul"))]
            {
                let _ = kv;
                return Err(SourcesError::Settings(
                    "settings.consulKvSource: this gloo was built without the `consul` feature"
                        .into(),
                ));
            }
        }

        if !options.no_discovery {
            if settings
                .consul
                .as_ref()
                .is_some_and(|c| c.service_discovery.is_some())
            {
                #[cfg(feature = "consul")]
                {
                    let found = gloo_discovery::consul::ConsulDiscovery::from_settings(&settings)
                        .map_err(|e| SourcesError::Consul(e.to_string()))?;
                    if let Some(plugin) = found {
                        plugins.push(Arc::new(plugin));
                    }
                }
                #[cfg(not(feature = "consul"))]
                return Err(SourcesError::Settings(
                    "settings.consul.serviceDiscovery: this gloo was built without the `consul` feature".into(),
                ));
            }
            #[cfg(any(feature = "ec2", feature = "lambda"))]
            {
                let client = gloo_filters::aws::AwsClient::new()
                    .map_err(|e| SourcesError::Aws(e.to_string()))?;
                #[cfg(feature = "ec2")]
                plugins.push(Arc::new(gloo_discovery::aws::Ec2Discovery::from_settings(
                    client.clone(),
                    &settings,
                )));
                #[cfg(feature = "lambda")]
                if fds_mode(&settings) != FdsMode::Disabled {
                    plugins.push(Arc::new(
                        gloo_discovery::aws::LambdaDiscovery::from_settings(client, &settings),
                    ));
                }
                #[cfg(not(feature = "lambda"))]
                let _ = client;
            }
            plugins.extend(options.plugins.iter().cloned());
        }

        let config: Arc<dyn ConfigSource> = if sources.len() == 1 {
            sources.remove(0)
        } else {
            Arc::new(MergedSource::new(sources))
        };
        #[allow(unused_mut)]
        let mut started = Self::run(config, plugins, settings);
        #[cfg(feature = "kubernetes")]
        {
            started.status_writer = status_writer;
        }
        Ok(started)
    }

    fn run(
        config: Arc<dyn ConfigSource>,
        plugins: Vec<Arc<dyn Discovery>>,
        settings: SettingsSpec,
    ) -> Self {
        let names = plugins.iter().map(|p| p.name().to_string()).collect();
        let running = plugins
            .into_iter()
            .fold(DiscoveryRunner::new(), DiscoveryRunner::plugin_arc)
            .start(config);
        Sources {
            running,
            settings,
            plugins: names,
            #[cfg(feature = "kubernetes")]
            status_writer: None,
        }
    }

    /// Everything in force: the config sources' resources and the discovered upstreams.
    pub fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.running.subscribe()
    }

    /// The discovered endpoints as one map (for `Translator::update_endpoints`); see
    /// [`endpoint_updates`](Self::endpoint_updates) to follow them at scale.
    pub fn endpoints(&self) -> watch::Receiver<Arc<Endpoints>> {
        self.running.endpoints()
    }

    /// The discovered endpoints as changes, only the upstreams that changed (for
    /// `Translator::apply_endpoint_changes`, the endpoint fast path).
    pub fn endpoint_updates(&self) -> EndpointUpdates {
        self.running.endpoint_updates()
    }

    /// The names of the discovery plugins running.
    pub fn plugins(&self) -> &[String] {
        &self.plugins
    }

    /// The Settings read at start, with the command line's additions.
    pub fn settings(&self) -> &SettingsSpec {
        &self.settings
    }

    /// Writes the statuses of the resources read from Kubernetes back to them, on every change
    /// of `reports` (a task on the current runtime, stopped when the returned handle is
    /// aborted); `None` when no config comes from Kubernetes.
    pub fn write_statuses(
        &self,
        reports: watch::Receiver<Arc<Reports>>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        #[cfg(feature = "kubernetes")]
        if let Some(writer) = &self.status_writer {
            let writer = writer.clone();
            let mut reports = reports;
            return Some(tokio::spawn(async move {
                loop {
                    let current = reports.borrow_and_update().clone();
                    if let Err(err) = writer.write(&current).await {
                        tracing::warn!(error = %err, "statuses not written to Kubernetes; retried on the next change");
                    }
                    if reports.changed().await.is_err() {
                        return;
                    }
                }
            }));
        }
        let _ = reports;
        None
    }
}

/// The Settings `gloo` runs with: `gloo-system/default` when the snapshot has it, else the
/// first Settings; defaults without any (gloo-core's [`settings_in_force`], which also decides
/// which namespaces the translation reads).
pub fn settings_of(snapshot: &SourceSnapshot) -> SettingsSpec {
    settings_in_force(&snapshot.resources)
        .map(|s| s.spec.clone())
        .unwrap_or_default()
}

/// `discoveryNamespace`, default `gloo-system`: where discovered upstreams are written, and
/// the key statuses are reported under.
pub use gloo_core::scope::write_namespace;

/// `discovery.fdsMode` (default `BLACKLIST`).
pub fn fds_mode(settings: &SettingsSpec) -> FdsMode {
    settings
        .discovery
        .as_ref()
        .and_then(|d| d.fds_mode)
        .unwrap_or_default()
}

/// How Ingresses are read, as Gloo's ingress controller reads its environment
/// (`REQUIRE_INGRESS_CLASS` `true` or `1`, `CUSTOM_INGRESS_CLASS`), the VirtualServices and
/// upstream references in `write_namespace`.
#[cfg(feature = "kubernetes")]
pub fn ingress_options(
    write_namespace: &str,
    env: impl Fn(&str) -> Option<String>,
) -> gloo_discovery::kubernetes::IngressOptions {
    let required = env("REQUIRE_INGRESS_CLASS").is_some_and(|v| v == "true" || v == "1");
    let mut options = gloo_discovery::kubernetes::IngressOptions::default()
        .write_namespace(write_namespace)
        .require_ingress_class(required);
    if let Some(class) = env("CUSTOM_INGRESS_CLASS").filter(|c| !c.is_empty()) {
        options = options.ingress_class(class);
    }
    options
}

/// A Kubernetes client from `kubeconfig`, else as kubectl finds one (`KUBECONFIG`,
/// `~/.kube/config`, then in-cluster).
#[cfg(feature = "kubernetes")]
async fn kube_client(
    kubeconfig: Option<&Path>,
) -> Result<gloo_discovery::kubernetes::kube::Client, SourcesError> {
    use gloo_discovery::kubernetes::kube;
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                SourcesError::Kubernetes(format!("--kubeconfig {}: {e}", path.display()))
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| {
                    SourcesError::Kubernetes(format!("--kubeconfig {}: {e}", path.display()))
                })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            SourcesError::Kubernetes(format!(
                "no cluster found (KUBECONFIG, ~/.kube/config, in-cluster): {e}"
            ))
        })?,
    };
    kube::Client::try_from(config).map_err(|e| SourcesError::Kubernetes(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gloo_core::load::{parse_str, Format};

    fn snapshot(yaml: &str) -> SourceSnapshot {
        let parsed = parse_str(yaml, "t.yaml", Format::Yaml);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        SourceSnapshot {
            resources: parsed.resources,
            errors: Vec::new(),
            generation: 1,
        }
    }

    #[test]
    fn the_default_settings_win_over_others() {
        let s = snapshot(
            "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: other, namespace: gloo-system}\nspec: {discoveryNamespace: a}\n---\napiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec: {discoveryNamespace: b, discovery: {fdsMode: DISABLED}}\n",
        );
        let settings = settings_of(&s);
        assert_eq!(write_namespace(&settings), "b");
        assert_eq!(fds_mode(&settings), FdsMode::Disabled);
        assert_eq!(write_namespace(&SettingsSpec::default()), "gloo-system");
        assert_eq!(fds_mode(&SettingsSpec::default()), FdsMode::Blacklist);
    }

    #[cfg(feature = "kubernetes")]
    #[test]
    fn the_ingress_class_is_required_as_gloos_environment_says() {
        use gloo_discovery::kubernetes::IngressOptions;
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let base = IngressOptions::default().write_namespace("gloo");
        assert_eq!(ingress_options("gloo", env(&[])), base);
        assert_eq!(
            ingress_options("gloo", env(&[("REQUIRE_INGRESS_CLASS", "yes")])),
            base
        );
        assert_eq!(
            ingress_options("gloo", env(&[("REQUIRE_INGRESS_CLASS", "1")])),
            base.clone().require_ingress_class(true)
        );
        assert_eq!(
            ingress_options(
                "gloo",
                env(&[
                    ("REQUIRE_INGRESS_CLASS", "true"),
                    ("CUSTOM_INGRESS_CLASS", "edge")
                ])
            ),
            base.require_ingress_class(true).ingress_class("edge")
        );
    }

    #[tokio::test]
    async fn settings_that_need_a_missing_feature_or_flag_are_refused_naming_the_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let refused = Sources::start(
            dir.path(),
            SourceOptions {
                ingress: true,
                ..SourceOptions::default()
            },
        )
        .await;
        match refused {
            Err(SourcesError::Settings(message)) => {
                assert!(message.contains("--ingress"), "{message}")
            }
            other => panic!("expected a Settings error, got {other:?}"),
        }
    }
}
