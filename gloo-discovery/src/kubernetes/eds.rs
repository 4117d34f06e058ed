//! Endpoint discovery (Gloo's EDS) for `kube` upstreams, from EndpointSlices
//! (`discovery.k8s.io/v1`) and Pods.
//!
//! Gloo's `projects/gloo/pkg/plugins/kubernetes/eds.go` reads the `v1` Endpoints; this reads
//! their replacement, EndpointSlices, with the same rules:
//!
//! - the upstream's `servicePort` picks the Service port (by number); the endpoint port is the
//!   slice port of the same *name* (a single-port Service takes the slice's port whatever its
//!   name, as Gloo does for unnamed ports);
//! - only ready endpoints: `conditions.ready` true, or unset (Kubernetes: "a nil value should be
//!   interpreted as ready"); of an endpoint's addresses the first is used (the API defines no
//!   meaning for the others); slices of `addressType: FQDN` are skipped (endpoints are IPs);
//! - each endpoint carries its Pod's labels, for subset load balancing: the Pod named by the
//!   endpoint's `targetRef`, else the running, non-host-network Pod with that IP;
//! - when the upstream has a `selector`, only endpoints whose Pod matches it are kept, and an
//!   endpoint whose Pod is unknown is skipped with a warning (Gloo's rule). Without Pod labels
//!   (`pod_labels(false)`) endpoints carry no labels and selectors are not applied.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gloo_core::model::ResourceRef;
use gloo_core::translate::{Endpoint, Endpoints};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::store::ObjectKey;
use crate::plugin::Upstreams;

/// The label tying an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What discovery keeps of an EndpointSlice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Slice {
    service: String,
    ports: Vec<(String, u32)>,
    /// Ready endpoints: the address and the Pod (`namespace`, `name`) it belongs to.
    ready: Vec<(String, Option<ObjectKey>)>,
}

impl Slice {
    /// The name of the slice's Service (in the slice's namespace).
    pub(crate) fn service(&self) -> &str {
        &self.service
    }

    /// The slice's service and ready endpoints, or `None` for a slice discovery cannot use (no
    /// service label, or FQDN addresses).
    pub(crate) fn from_k8s(slice: EndpointSlice) -> Option<Slice> {
        let service = slice
            .metadata
            .labels
            .as_ref()?
            .get(SERVICE_NAME_LABEL)?
            .clone();
        if slice.address_type != "IPv4" && slice.address_type != "IPv6" {
            return None;
        }
        let ports = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let port = u32::try_from(p.port?).ok()?;
                Some((p.name.unwrap_or_default(), port))
            })
            .collect();
        let ready = Listed::into_list(slice.endpoints)
            .into_iter()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true))
            .filter_map(|e| {
                let address = e.addresses.into_iter().next()?;
                let pod = e
                    .target_ref
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| Some((r.namespace?, r.name?)));
                Some((address, pod))
            })
            .collect();
        Some(Slice {
            service,
            ports,
            ready,
        })
    }
}

/// An EndpointSlice's `endpoints`: a list up to Kubernetes 1.35's API, optional from 1.36's
/// (k8s-openapi's version features differ), read the same either way.
trait Listed {
    fn into_list(self) -> Vec<k8s_openapi::api::discovery::v1::Endpoint>;
}

impl Listed for Vec<k8s_openapi::api::discovery::v1::Endpoint> {
    fn into_list(self) -> Vec<k8s_openapi::api::discovery::v1::Endpoint> {
        self
    }
}

impl Listed for Option<Vec<k8s_openapi::api::discovery::v1::Endpoint>> {
    fn into_list(self) -> Vec<k8s_openapi::api::discovery::v1::Endpoint> {
        self.unwrap_or_default()
    }
}

/// What discovery keeps of a Pod: its labels, and its IP if it is running off the host network.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodInfo {
    labels: BTreeMap<String, String>,
    routable_ip: Option<String>,
}

impl PodInfo {
    pub(crate) fn from_k8s(pod: Pod) -> PodInfo {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        let status = pod.status.unwrap_or_default();
        let running = status.phase.as_deref() == Some("Running");
        let routable_ip = status
            .pod_ip
            .filter(|ip| running && !host_network && !ip.is_empty());
        PodInfo {
            labels: pod.metadata.labels.unwrap_or_default(),
            routable_ip,
        }
    }
}

/// The Kubernetes objects endpoints are computed from.
pub(crate) struct Inputs<'a> {
    pub(crate) services: &'a BTreeMap<ObjectKey, Service>,
    pub(crate) slices: &'a BTreeMap<ObjectKey, Slice>,
    /// `None` when Pods are not watched.
    pub(crate) pods: Option<&'a BTreeMap<ObjectKey, PodInfo>>,
}

/// The endpoints of every `kube` upstream in `upstreams`, and warnings for what could not be
/// resolved.
pub(crate) fn endpoints(
    upstreams: &Upstreams,
    inputs: &Inputs<'_>,
) -> (Endpoints, BTreeSet<String>) {
    let mut out = Endpoints::new();
    let mut warnings = BTreeSet::new();
    let by_ip: HashMap<&str, &PodInfo> = inputs
        .pods
        .map(|pods| {
            pods.values()
                .filter_map(|p| Some((p.routable_ip.as_deref()?, p)))
                .collect()
        })
        .unwrap_or_default();
    // Slices by service, so each upstream looks at its own.
    let mut slices_of: HashMap<(&str, &str), Vec<&Slice>> = HashMap::new();
    for ((namespace, _), slice) in inputs.slices {
        slices_of
            .entry((namespace.as_str(), slice.service.as_str()))
            .or_default()
            .push(slice);
    }
    for (reference, upstream) in upstreams.iter() {
        let Some(kube) = upstream.spec.kube.as_ref() else {
            continue;
        };
        let found = resolve(reference, kube, inputs, &slices_of, &by_ip, &mut warnings);
        if !found.is_empty() {
            out.insert(reference.clone(), found);
        }
    }
    (out, warnings)
}

fn resolve(
    reference: &ResourceRef,
    kube: &gloo_core::model::upstream::KubeUpstreamSpec,
    inputs: &Inputs<'_>,
    slices_of: &HashMap<(&str, &str), Vec<&Slice>>,
    by_ip: &HashMap<&str, &PodInfo>,
    warnings: &mut BTreeSet<String>,
) -> Vec<Endpoint> {
    let namespace = kube.service_namespace.as_deref().unwrap_or_default();
    let name = kube.service_name.as_deref().unwrap_or_default();
    let number = kube.service_port.unwrap_or(0);
    let service = inputs
        .services
        .get(&(namespace.to_string(), name.to_string()));
    let ports = service
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let Some(service_port) = ports
        .iter()
        .find(|p| u32::try_from(p.port).ok() == Some(number))
    else {
        warnings.insert(format!(
            "upstream {reference}: port {number} not found for service {namespace}.{name}"
        ));
        return Vec::new();
    };
    let single_port = ports.len() == 1;
    let port_name = service_port.name.as_deref().unwrap_or_default();
    let mut found: BTreeSet<Endpoint> = BTreeSet::new();
    for slice in slices_of.get(&(namespace, name)).into_iter().flatten() {
        let port = slice
            .ports
            .iter()
            .find(|(n, _)| n == port_name)
            .or_else(|| slice.ports.first().filter(|_| single_port))
            .map(|(_, p)| *p);
        let Some(port) = port else {
            if !slice.ready.is_empty() {
                warnings.insert(format!(
                    "upstream {reference}: port {number} ({port_name}) not found in an EndpointSlice of service {namespace}.{name}"
                ));
            }
            continue;
        };
        for (address, pod) in &slice.ready {
            let labels = inputs.pods.and_then(|pods| {
                pod.as_ref()
                    .and_then(|key| pods.get(key))
                    .or_else(|| by_ip.get(address.as_str()).copied())
                    .map(|p| &p.labels)
            });
            if inputs.pods.is_some() && !kube.selector.is_empty() {
                let Some(labels) = labels else {
                    warnings.insert(format!(
                        "upstream {reference} service {name}: running pod not found with IP {address}"
                    ));
                    continue;
                };
                if !kube.selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
            }
            let mut endpoint = Endpoint::new(address.clone(), port);
            endpoint.labels = labels.cloned().unwrap_or_default();
            found.insert(endpoint);
        }
    }
    found.into_iter().collect()
}
