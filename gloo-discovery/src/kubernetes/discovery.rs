//! [`KubernetesDiscovery`]: the Kubernetes plugin (Services → upstreams, EndpointSlices and
//! Pods → endpoints).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gloo_core::model::settings::SettingsSpec;
use gloo_core::model::upstream::UpstreamSpec;
use gloo_core::model::DEFAULT_NAMESPACE;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;
use tokio::sync::watch;

use super::eds::{self, PodInfo, Slice};
use super::store::{keep_service, names, namespaced_apis, RetryBackoff, Store};
use super::uds::upstreams_for_service;
use super::AbortOnDrop;
use crate::plugin::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError};

/// Kubernetes discovery, as Gloo's `kubernetes` plugin: every port of every Service in the
/// watched namespaces becomes an upstream `<namespace>-<service>-<port>` in the write namespace
/// (see [`upstreams_for_service`]), and every `kube` upstream in force (discovered or written)
/// gets the ready endpoints of its Service from EndpointSlices, labelled with their Pods'
/// labels.
///
/// It lists and watches Services, EndpointSlices and Pods through the API server (kube-rs
/// watchers: a `410 Gone` re-lists, a broken watch resumes, an unreachable API server is retried
/// with a backoff while the last endpoints keep serving). Nothing is published until the first
/// lists are complete.
///
/// ```no_run
/// use std::sync::Arc;
/// use gloo_core::source::DirectorySource;
/// use gloo_discovery::{DiscoveryRunner, kubernetes::KubernetesDiscovery};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let config = Arc::new(DirectorySource::watch("./gloo-config")?);
/// let running = DiscoveryRunner::new()
///     .plugin(KubernetesDiscovery::new(client).watch_namespaces(["default", "apps"]))
///     .start(config);
/// # drop(running);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KubernetesDiscovery {
    client: kube::Client,
    watch_namespaces: Vec<String>,
    write_namespace: String,
    discover_upstreams: bool,
    service_labels: BTreeMap<String, String>,
    global_annotations: BTreeMap<String, String>,
    pod_labels: bool,
    backoff: RetryBackoff,
}

impl std::fmt::Debug for KubernetesDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDiscovery")
            .field("watch_namespaces", &self.watch_namespaces)
            .field("write_namespace", &self.write_namespace)
            .field("discover_upstreams", &self.discover_upstreams)
            .field("service_labels", &self.service_labels)
            .field("pod_labels", &self.pod_labels)
            .finish_non_exhaustive()
    }
}

impl KubernetesDiscovery {
    /// Discovery through `client`: all namespaces, upstreams written to `gloo-system`, Pod
    /// labels on endpoints.
    pub fn new(client: kube::Client) -> Self {
        KubernetesDiscovery {
            client,
            watch_namespaces: Vec::new(),
            write_namespace: DEFAULT_NAMESPACE.to_string(),
            discover_upstreams: true,
            service_labels: BTreeMap::new(),
            global_annotations: BTreeMap::new(),
            pod_labels: true,
            backoff: RetryBackoff::default(),
        }
    }

    /// Discovery configured from Gloo Settings: `watchNamespaces`, `discoveryNamespace` (the
    /// write namespace), `discovery.udsOptions` (`enabled`, `watchLabels`) and
    /// `upstreamOptions.globalAnnotations`.
    pub fn from_settings(client: kube::Client, settings: &SettingsSpec) -> Self {
        let mut discovery = Self::new(client).watch_namespaces(settings.watch_namespaces.clone());
        if let Some(ns) = settings
            .discovery_namespace
            .as_deref()
            .filter(|n| !n.is_empty())
        {
            discovery.write_namespace = ns.to_string();
        }
        if let Some(uds) = settings
            .discovery
            .as_ref()
            .and_then(|d| d.uds_options.as_ref())
        {
            discovery.discover_upstreams = uds.enabled.unwrap_or(true);
            discovery.service_labels = uds.watch_labels.clone();
        }
        if let Some(options) = settings.upstream_options.as_ref() {
            discovery.global_annotations = options.global_annotations.clone();
        }
        discovery
    }

    /// Only these namespaces (Settings `watchNamespaces`); empty means all.
    pub fn watch_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.watch_namespaces = names(namespaces);
        self
    }

    /// The namespace discovered upstreams are written to (Settings `discoveryNamespace`;
    /// default `gloo-system`).
    pub fn write_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.write_namespace = namespace.into();
        self
    }

    /// Whether to discover upstreams from Services (default true); endpoints are found either
    /// way.
    pub fn discover_upstreams(mut self, enabled: bool) -> Self {
        self.discover_upstreams = enabled;
        self
    }

    /// Only Services with all these labels become upstreams (`udsOptions.watchLabels`).
    pub fn service_labels(mut self, labels: BTreeMap<String, String>) -> Self {
        self.service_labels = labels;
        self
    }

    /// Annotations applied to every Service before its own (`upstreamOptions.globalAnnotations`).
    pub fn global_annotations(mut self, annotations: BTreeMap<String, String>) -> Self {
        self.global_annotations = annotations;
        self
    }

    /// Whether to watch Pods for endpoint labels and upstream selectors (default true). Without
    /// them endpoints carry no labels and `selector`s are not applied.
    pub fn pod_labels(mut self, enabled: bool) -> Self {
        self.pod_labels = enabled;
        self
    }

    /// How long a failed watch waits before it lists again (default 500 ms doubling to 30 s).
    pub fn backoff(mut self, backoff: RetryBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn uds(&self, services: &BTreeMap<super::store::ObjectKey, Service>) -> Vec<crate::Upstream> {
        services
            .values()
            .filter(|s| {
                let labels = s.metadata.labels.as_ref();
                self.service_labels
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .flat_map(|s| upstreams_for_service(s, &self.write_namespace, &self.global_annotations))
            .collect()
    }

    async fn run_inner(
        self: Arc<Self>,
        mut context: DiscoveryContext,
    ) -> Result<(), DiscoveryError> {
        let (changes, mut changed) = watch::channel(0u64);
        let changes = Arc::new(changes);
        // Tracked: an EndpointSlice event re-resolves only the upstreams of its Service.
        let services: Arc<Store<Service>> = Store::tracked("services", changes.clone());
        let slices: Arc<Store<Slice>> = Store::tracked("endpointslices", changes.clone());
        let pods: Arc<Store<PodInfo>> = Store::tracked("pods", changes.clone());
        let mut tasks = AbortOnDrop::default();
        let ns = &self.watch_namespaces;
        tasks.extend(services.watch(
            namespaced_apis::<Service>(&self.client, ns),
            watcher::Config::default(),
            self.backoff,
            Arc::new(keep_service),
        ));
        tasks.extend(slices.watch(
            namespaced_apis::<EndpointSlice>(&self.client, ns),
            watcher::Config::default(),
            self.backoff,
            Arc::new(|_, s| Slice::from_k8s(s)),
        ));
        if self.pod_labels {
            tasks.extend(pods.watch(
                namespaced_apis::<Pod>(&self.client, ns),
                watcher::Config::default(),
                self.backoff,
                Arc::new(|_, p| Some(PodInfo::from_k8s(p))),
            ));
        }
        let mut logged: BTreeSet<String> = BTreeSet::new();
        // What the last full resolution was made from (`None` before the first), and the
        // indexes an EndpointSlice event needs to re-resolve only its Service's upstreams.
        let mut resolved: Option<Arc<crate::Upstreams>> = None;
        let mut index = ServiceIndex::default();
        loop {
            // Taken before the stores are read, so no change is missed (one arriving after is
            // taken on the next turn).
            let service_changes = services.take_changes();
            let slice_changes = slices.take_changes();
            let pod_changes = pods.take_changes();
            let services_changed = service_changes.as_ref().is_none_or(|c| !c.is_empty());
            if services.synced() && self.discover_upstreams && services_changed {
                context
                    .publisher
                    .set_upstreams(services.read(|s| self.uds(s)));
            }
            if services.synced() && slices.synced() && (!self.pod_labels || pods.synced()) {
                let upstreams = context.upstreams.borrow_and_update().clone();
                let only_slices = match (&resolved, &slice_changes) {
                    (Some(last), Some(changed))
                        if Arc::ptr_eq(last, &upstreams)
                            && !services_changed
                            && pod_changes.as_ref().is_some_and(|c| c.is_empty()) =>
                    {
                        Some(changed)
                    }
                    _ => None,
                };
                let inputs = |only: &crate::Upstreams| {
                    services.read(|svc| {
                        slices.read(|sl| {
                            pods.read(|p| {
                                eds::endpoints(
                                    only,
                                    &eds::Inputs {
                                        services: svc,
                                        slices: sl,
                                        pods: self.pod_labels.then_some(p),
                                    },
                                )
                            })
                        })
                    })
                };
                match only_slices {
                    Some(changed) => {
                        let affected = slices.read(|sl| index.slices_changed(changed, sl));
                        if !affected.is_empty() {
                            let (mut found, more) = inputs(&affected);
                            context.publisher.update_endpoints(
                                affected
                                    .keys()
                                    .map(|r| (r.clone(), found.remove(r).unwrap_or_default())),
                            );
                            for warning in more.difference(&logged) {
                                tracing::warn!(plugin = "kubernetes", "{warning}");
                            }
                            logged.extend(more);
                        }
                    }
                    None => {
                        let warnings = self.not_watched(&upstreams);
                        let (found, more) = inputs(&upstreams);
                        context.publisher.set_endpoints(found);
                        // Log what is new only: endpoints change all the time, their
                        // problems rarely.
                        let all: BTreeSet<String> = warnings.into_iter().chain(more).collect();
                        for warning in all.difference(&logged) {
                            tracing::warn!(plugin = "kubernetes", "{warning}");
                        }
                        logged = all;
                        slices.read(|sl| index.rebuild(&upstreams, sl));
                        resolved = Some(upstreams);
                    }
                }
            }
            tokio::select! {
                result = changed.changed() => if result.is_err() { return Ok(()) },
                result = context.upstreams.changed() => if result.is_err() { return Ok(()) },
            }
        }
    }

    /// Warnings for upstreams whose service is in a namespace this plugin does not watch.
    fn not_watched(&self, upstreams: &crate::Upstreams) -> Vec<String> {
        if self.watch_namespaces.is_empty() {
            return Vec::new();
        }
        upstreams
            .iter()
            .filter_map(|(reference, u)| {
                let ns = u.spec.kube.as_ref()?.service_namespace.as_deref()?;
                (!self.watch_namespaces.iter().any(|w| w == ns)).then(|| {
                    format!("upstream {reference}: namespace {ns} is not watched, and has upstreams pointing to it")
                })
            })
            .collect()
    }
}

impl Discovery for KubernetesDiscovery {
    fn name(&self) -> &str {
        "kubernetes"
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.kube.is_some()
    }

    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(self.run_inner(context))
    }
}

/// What an EndpointSlice event needs to find the upstreams to re-resolve.
#[derive(Default)]
struct ServiceIndex {
    /// The `kube` upstreams of each Service (`namespace`, `name`).
    upstreams: BTreeMap<(String, String), crate::Upstreams>,
    /// The Service of each EndpointSlice as last seen (a deleted slice is gone from the store).
    slice_service: BTreeMap<super::store::ObjectKey, String>,
}

impl ServiceIndex {
    /// Indexes `upstreams` and `slices` anew (after a full resolution).
    fn rebuild(
        &mut self,
        upstreams: &crate::Upstreams,
        slices: &BTreeMap<super::store::ObjectKey, Slice>,
    ) {
        self.upstreams.clear();
        for (reference, upstream) in upstreams {
            let Some(kube) = upstream.spec.kube.as_ref() else {
                continue;
            };
            let service = (
                kube.service_namespace.clone().unwrap_or_default(),
                kube.service_name.clone().unwrap_or_default(),
            );
            self.upstreams
                .entry(service)
                .or_default()
                .insert(reference.clone(), upstream.clone());
        }
        self.slice_service = slices
            .iter()
            .map(|(key, slice)| (key.clone(), slice.service().to_string()))
            .collect();
    }

    /// The upstreams of the Services whose EndpointSlices `changed` (before or after the
    /// change: a slice can move to another Service), noting the slices' Services anew.
    fn slices_changed(
        &mut self,
        changed: &BTreeSet<super::store::ObjectKey>,
        slices: &BTreeMap<super::store::ObjectKey, Slice>,
    ) -> crate::Upstreams {
        let mut services: BTreeSet<(String, String)> = BTreeSet::new();
        for key in changed {
            let now = slices.get(key).map(|s| s.service().to_string());
            let before = match &now {
                Some(service) => self.slice_service.insert(key.clone(), service.clone()),
                None => self.slice_service.remove(key),
            };
            for service in now.into_iter().chain(before) {
                services.insert((key.0.clone(), service));
            }
        }
        services
            .iter()
            .filter_map(|service| self.upstreams.get(service))
            .flat_map(|upstreams| upstreams.iter().map(|(r, u)| (r.clone(), u.clone())))
            .collect()
    }
}
