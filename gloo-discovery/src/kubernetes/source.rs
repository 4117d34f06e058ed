//! [`KubernetesSource`]: Gloo's custom resources (and Secrets, ConfigMaps, and optionally
//! Ingresses) read from the Kubernetes API server, as a [`ConfigSource`].

use std::collections::BTreeMap;
use std::sync::Arc;

use gloo_core::load::{self, FileContents, LoadError, LoadedResource, Origin};
use gloo_core::model::Kind;
use gloo_core::source::{ConfigSource, SourceSnapshot};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;
use tokio::sync::watch;

use super::ingress::{self, IngressOptions};
use super::store::{dynamic_apis, keep_service, names, namespaced_apis, RetryBackoff, Store};
use super::AbortOnDrop;

/// The API resource Gloo's CRD (or the core Secret or ConfigMap) of `kind` is served as: group, version,
/// kind and plural, as in Gloo's CRD manifests.
///
/// ```
/// use gloo_core::model::Kind;
/// use gloo_discovery::kubernetes::api_resource;
/// let vs = api_resource(Kind::VirtualService);
/// assert_eq!((vs.group.as_str(), vs.version.as_str(), vs.plural.as_str()), ("gateway.solo.io", "v1", "virtualservices"));
/// ```
pub fn api_resource(kind: Kind) -> ApiResource {
    let plural = match kind {
        Kind::Gateway => "gateways",
        Kind::VirtualService => "virtualservices",
        Kind::RouteTable => "routetables",
        Kind::VirtualHostOption => "virtualhostoptions",
        Kind::RouteOption => "routeoptions",
        Kind::Upstream => "upstreams",
        Kind::UpstreamGroup => "upstreamgroups",
        Kind::Settings => "settings",
        Kind::AuthConfig => "authconfigs",
        Kind::RateLimitConfig => "ratelimitconfigs",
        Kind::Secret => "secrets",
        Kind::ConfigMap => "configmaps",
        // Gloo has no Artifact CRD: on Kubernetes its Artifacts are ConfigMaps, and the source
        // reads those (it leaves this kind out). This is the name such a CRD would have.
        Kind::Artifact => "artifacts",
    };
    let (group, version) = match kind.api_version().split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", kind.api_version()),
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind.name()), plural)
}

/// The API path of one namespaced object (`/apis/<group>/<version>/namespaces/<ns>/<plural>/<name>`,
/// `/api/v1/...` for the core group): the origin its resources and errors name.
pub(crate) fn object_path(resource: &ApiResource, namespace: &str, name: &str) -> String {
    let prefix = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    format!("{prefix}/namespaces/{namespace}/{}/{name}", resource.plural)
}

/// What the source keeps of one object: its newest version that parsed, and why the newest
/// version did not (then the older good one stays in force, as a directory source keeps a
/// file's last good contents).
#[derive(Debug, Clone)]
pub(crate) struct Parsed {
    good: Option<LoadedResource>,
    error: Option<LoadError>,
}

/// The metadata fields kept for gloo-core's `ObjectMeta`. The API server's others
/// (`deletionTimestamp`, `selfLink`, ...) are dropped before parsing, and so are the bulky
/// `managedFields` and `resourceVersion`: it changes with every status write, and a status
/// write must not look like a new version of the resource (`generation` tells spec changes).
const KEPT_METADATA: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "generation",
    "uid",
    "creationTimestamp",
    "generateName",
    "finalizers",
    "ownerReferences",
];

/// Parses one object with gloo-core's loader (unknown fields are errors naming the field and
/// the object's API path).
pub(crate) fn parse_object(
    resource: &ApiResource,
    previous: Option<&Parsed>,
    object: DynamicObject,
) -> Parsed {
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let name = object.metadata.name.clone().unwrap_or_default();
    let origin = object_path(resource, &namespace, &name);
    let contents = match serde_json::to_value(&object) {
        Ok(mut value) => {
            if let Value::Object(map) = &mut value {
                // List items of built-in kinds come without them.
                map.entry("apiVersion")
                    .or_insert_with(|| Value::String(resource.api_version.clone()));
                map.entry("kind")
                    .or_insert_with(|| Value::String(resource.kind.clone()));
                if let Some(Value::Object(meta)) = map.get_mut("metadata") {
                    meta.retain(|k, _| KEPT_METADATA.contains(&k.as_str()));
                }
            }
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            load::parse_str(&text, origin.as_str(), load::Format::Json)
        }
        Err(err) => FileContents {
            resources: Vec::new(),
            errors: vec![LoadError {
                file: origin.as_str().into(),
                line: 1,
                column: 1,
                message: format!("cannot read object: {err}"),
            }],
        },
    };
    match (
        contents.resources.into_iter().next(),
        contents.errors.into_iter().next(),
    ) {
        (Some(resource), None) => Parsed {
            good: Some(resource),
            error: None,
        },
        (_, error) => {
            let error = error.unwrap_or_else(|| LoadError {
                file: origin.as_str().into(),
                line: 1,
                column: 1,
                message: "no resource in object".into(),
            });
            tracing::warn!(object = %origin, error = %error, "Kubernetes object has errors; keeping its last good version");
            Parsed {
                good: previous.and_then(|p| p.good.clone()),
                error: Some(error),
            }
        }
    }
}

/// Gloo's resources read from the Kubernetes API server: every [`Kind`] gloo-core models
/// (`gateway.solo.io` Gateway, VirtualService, RouteTable, VirtualHostOption, RouteOption;
/// `gloo.solo.io` Upstream, UpstreamGroup, Settings; `enterprise.gloo.solo.io` AuthConfig;
/// `ratelimit.solo.io` RateLimitConfig; core `v1` Secrets and ConfigMaps, the latter being
/// Gloo's Artifacts on Kubernetes: OPA modules, WAF rules), listed and watched as dynamic
/// objects and parsed by gloo-core's loader, so an unknown field is an error naming the object
/// (`/apis/gateway.solo.io/v1/namespaces/default/virtualservices/web:5:3: spec.virtualHost:
/// unknown field ...`). An object whose new version does not parse keeps its last good version
/// in force, and the error is reported in the snapshot.
///
/// With [`ingress`](KubernetesSourceBuilder::ingress), Kubernetes Ingresses are translated as
/// Gloo's ingress controller does (see [`translate_ingresses`](super::translate_ingresses)) and
/// published as VirtualServices.
///
/// The first snapshot is published once every kind has been listed; after that, every change
/// publishes one. A watch that fails (the API server is down, `410 Gone`) keeps the last
/// objects and retries with a backoff; a re-list replaces what it lists, so objects deleted in
/// the meantime go away.
///
/// ```no_run
/// use gloo_core::source::ConfigSource;
/// use gloo_discovery::kubernetes::KubernetesSource;
///
/// # async fn run() -> Result<(), kube::Error> {
/// let client = kube::Client::try_default().await?;
/// let source = KubernetesSource::builder(client).watch_namespaces(["gloo-system"]).start();
/// source.synced().await;
/// println!("{} resources", source.subscribe().borrow().resources.len());
/// # Ok(())
/// # }
/// ```
pub struct KubernetesSource {
    name: String,
    snapshots: watch::Receiver<Arc<SourceSnapshot>>,
    synced: watch::Receiver<bool>,
    _tasks: AbortOnDrop,
}

impl std::fmt::Debug for KubernetesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Options of a [`KubernetesSource`].
#[derive(Clone)]
pub struct KubernetesSourceBuilder {
    client: kube::Client,
    watch_namespaces: Vec<String>,
    kinds: Vec<Kind>,
    ingress: Option<IngressOptions>,
    backoff: RetryBackoff,
}

impl std::fmt::Debug for KubernetesSourceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesSourceBuilder")
            .field("watch_namespaces", &self.watch_namespaces)
            .field("kinds", &self.kinds)
            .field("ingress", &self.ingress)
            .finish_non_exhaustive()
    }
}

impl KubernetesSourceBuilder {
    /// Only these namespaces (Settings `watchNamespaces`); empty means all.
    pub fn watch_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.watch_namespaces = names(namespaces);
        self
    }

    /// Only these kinds (default: all of [`Kind::ALL`] but [`Kind::Artifact`], which is always
    /// left out: Gloo has no Artifact CRD, its Artifacts on Kubernetes are the ConfigMaps of
    /// [`Kind::ConfigMap`]). Leave out a CRD the cluster does not have (a missing CRD answers
    /// 404, and the source would wait for it).
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = Kind>) -> Self {
        self.kinds = kinds.into_iter().filter(|k| *k != Kind::Artifact).collect();
        self
    }

    /// Also translate Kubernetes Ingresses (`networking.k8s.io/v1`) into VirtualServices.
    pub fn ingress(mut self, options: IngressOptions) -> Self {
        self.ingress = Some(options);
        self
    }

    /// How long a failed watch waits before it lists again (default 500 ms doubling to 30 s).
    pub fn backoff(mut self, backoff: RetryBackoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Starts listing and watching on the current tokio runtime; everything stops when the
    /// source is dropped.
    pub fn start(self) -> KubernetesSource {
        let (changes, mut changed) = watch::channel(0u64);
        let changes = Arc::new(changes);
        let mut tasks = AbortOnDrop::default();
        let ns = &self.watch_namespaces;
        let mut stores = Vec::new();
        for kind in &self.kinds {
            let resource = api_resource(*kind);
            let store: Arc<Store<Parsed>> = Store::new(
                format!("{}.{}", resource.plural, resource.group),
                changes.clone(),
            );
            let for_parse = resource.clone();
            tasks.extend(store.watch(
                dynamic_apis(&self.client, ns, &resource),
                watcher::Config::default(),
                self.backoff,
                Arc::new(move |previous, object| Some(parse_object(&for_parse, previous, object))),
            ));
            stores.push(store);
        }
        let ingresses = self.ingress.as_ref().map(|_| {
            let ingresses: Arc<Store<Ingress>> =
                Store::new("ingresses.networking.k8s.io", changes.clone());
            let services: Arc<Store<Service>> = Store::new("services", changes.clone());
            tasks.extend(ingresses.watch(
                namespaced_apis::<Ingress>(&self.client, ns),
                watcher::Config::default(),
                self.backoff,
                Arc::new(|_, mut i: Ingress| {
                    i.metadata.managed_fields = None;
                    Some(i)
                }),
            ));
            tasks.extend(services.watch(
                namespaced_apis::<Service>(&self.client, ns),
                watcher::Config::default(),
                self.backoff,
                Arc::new(keep_service),
            ));
            (ingresses, services)
        });
        let name = if ns.is_empty() {
            "kubernetes".to_string()
        } else {
            format!("kubernetes:{}", ns.join(","))
        };
        let (snapshot_tx, snapshots) = watch::channel(Arc::new(SourceSnapshot::default()));
        let (synced_tx, synced) = watch::channel(false);
        let ingress_options = self.ingress.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let all_synced = stores.iter().all(|s| s.synced())
                    && ingresses
                        .as_ref()
                        .is_none_or(|(i, s)| i.synced() && s.synced());
                if all_synced {
                    let (mut resources, mut errors) = collect(&stores);
                    if let (Some((ingress_store, service_store)), Some(options)) =
                        (&ingresses, &ingress_options)
                    {
                        let translated = ingress_store.read(|i| {
                            service_store.read(|s| {
                                let i: Vec<&Ingress> = i.values().collect();
                                let s: Vec<&Service> = s.values().collect();
                                ingress::translate(&i, &s, options)
                            })
                        });
                        resources.extend(translated.loaded_resources());
                        errors.extend(translated.load_errors());
                    }
                    snapshot_tx.send_if_modified(|current| {
                        if current.generation > 0
                            && current.resources == resources
                            && current.errors == errors
                        {
                            return false;
                        }
                        *current = Arc::new(SourceSnapshot {
                            resources,
                            errors,
                            generation: current.generation + 1,
                        });
                        true
                    });
                    synced_tx.send_if_modified(|s| !std::mem::replace(s, true));
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
        }));
        KubernetesSource {
            name,
            snapshots,
            synced,
            _tasks: tasks,
        }
    }
}

/// Every kept resource and error, in kind order, then namespace and name.
fn collect(stores: &[Arc<Store<Parsed>>]) -> (Vec<LoadedResource>, Vec<LoadError>) {
    let mut resources = Vec::new();
    let mut errors = Vec::new();
    for store in stores {
        store.read(|objects: &BTreeMap<_, Parsed>| {
            for parsed in objects.values() {
                resources.extend(parsed.good.iter().cloned());
                errors.extend(parsed.error.iter().cloned());
            }
        });
    }
    (resources, errors)
}

impl KubernetesSource {
    /// A source reading through `client`: all namespaces, every kind, no Ingresses.
    pub fn builder(client: kube::Client) -> KubernetesSourceBuilder {
        KubernetesSourceBuilder {
            client,
            watch_namespaces: Vec::new(),
            kinds: Kind::ALL
                .iter()
                .copied()
                .filter(|k| *k != Kind::Artifact)
                .collect(),
            ingress: None,
            backoff: RetryBackoff::default(),
        }
    }

    /// Resolves once the first snapshot (every kind listed) is published.
    pub async fn synced(&self) {
        let mut synced = self.synced.clone();
        // The sender lives as long as the source's task, which lives as long as `self`.
        let _ = synced.wait_for(|s| *s).await;
    }
}

impl ConfigSource for KubernetesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Arc<SourceSnapshot>> {
        self.snapshots.clone()
    }
}

/// A resource the source made itself (an Ingress translation), at `origin`.
pub(crate) fn generated(resource: gloo_core::model::Resource, origin: &str) -> LoadedResource {
    LoadedResource {
        resource,
        origin: Origin::new(origin, 1),
    }
}
