//! Kubernetes for gloo (feature `kubernetes`), through kube-rs. The feature builds k8s-openapi for
//! Kubernetes API 1.36; k8s-openapi builds for exactly one version, so an application that picks
//! its own enables `kubernetes-unversioned` instead.
//!
//! - [`KubernetesDiscovery`], a [`Discovery`](crate::Discovery) plugin like Gloo's `kubernetes`
//!   plugin: Service ports become upstreams `<namespace>-<service>-<port>`
//!   ([`upstreams_for_service`]), and `kube` upstreams get the ready endpoints of their Service
//!   from EndpointSlices, labelled with their Pods' labels;
//! - [`KubernetesSource`], a [`ConfigSource`](gloo_core::source::ConfigSource) of Gloo's custom
//!   resources, Secrets and ConfigMaps read from the API server, optionally with Ingresses
//!   translated as Gloo's ingress controller does ([`translate_ingresses`]);
//! - [`StatusWriter`], which writes gloo-core's statuses back to those resources, and what an
//!   Ingress asks for that is not served as Warning Events on the Ingress.
//!
//! Connect with any [`kube::Client`] (`kube::Client::try_default()` reads the kubeconfig or the
//! in-cluster service account); [`kube`] and [`k8s_openapi`] are re-exported so the versions
//! match. Watches recover by themselves: a `410 Gone` re-lists, a broken watch resumes from its
//! last resource version, and an unreachable API server is retried with a [`RetryBackoff`]
//! while what was last seen keeps serving.

mod discovery;
mod eds;
mod ingress;
mod source;
mod status;
mod store;
mod uds;

pub use discovery::KubernetesDiscovery;
pub use ingress::{
    translate_ingresses, IngressOptions, IngressProblem, IngressTranslation,
    INGRESS_CLASS_ANNOTATION,
};
pub use source::{api_resource, KubernetesSource, KubernetesSourceBuilder};
pub use status::{StatusWriteError, StatusWriter, EVENT_REFRESH};
pub use store::RetryBackoff;
pub use uds::{
    upstreams_for_service, DEEP_MERGE_ANNOTATION, DISCOVERED_BY, H2_ANNOTATION,
    UPSTREAM_CONFIG_ANNOTATION,
};

pub use k8s_openapi;
pub use kube;

/// Background tasks that stop when this is dropped.
#[derive(Default)]
pub(crate) struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl AbortOnDrop {
    pub(crate) fn extend(&mut self, tasks: impl IntoIterator<Item = tokio::task::JoinHandle<()>>) {
        self.0.extend(tasks);
    }

    pub(crate) fn push(&mut self, task: tokio::task::JoinHandle<()>) {
        self.0.push(task);
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
