//! The [`Discovery`] plugin trait and what a running plugin is handed.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gloo_core::model::upstream::{LambdaFunctionSpec, UpstreamSpec};
use gloo_core::model::{Object, ResourceRef};
use gloo_core::source::SourceSnapshot;
use gloo_core::translate::{Endpoint, Endpoints};
use tokio::sync::watch;

use crate::runner::Shared;

/// A boxed, sendable future, as [`Discovery::run`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An `Upstream` resource (`gloo.solo.io/v1`): its metadata and spec.
pub type Upstream = Object<UpstreamSpec>;

/// Upstreams by reference (`namespace`/`name`, namespace always set).
pub type Upstreams = BTreeMap<ResourceRef, Arc<Upstream>>;

/// A discovery plugin: finds upstreams (Gloo's UDS: one per Kubernetes Service port, one per
/// Consul service, one per Lambda function) and the endpoints of upstreams (Gloo's EDS: the
/// ready addresses behind a `kube` upstream, the instances behind an `awsEc2` one).
///
/// A plugin is started once by a [`DiscoveryRunner`](crate::DiscoveryRunner) and runs until it
/// returns. It learns the upstreams it must resolve (those in force, written by users or
/// discovered, for which [`resolves`](Self::resolves) is true) from
/// [`DiscoveryContext::upstreams`], and publishes with [`DiscoveryContext::publisher`].
/// Whatever it published stays in force when it fails: the runner logs the error and starts it
/// again after a backoff, so an unavailable API server or Consul agent never drops endpoints.
///
/// Endpoint changes reach proxies through the translator's endpoint fast path (no route is
/// translated again); upstream changes re-translate, as any config change does.
///
/// ```
/// use std::sync::Arc;
/// use gloo_core::model::upstream::UpstreamSpec;
/// use gloo_core::translate::Endpoint;
/// use gloo_discovery::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError};
///
/// /// Every upstream of this plugin's kind lives on one host.
/// struct OneHost;
///
/// impl Discovery for OneHost {
///     fn name(&self) -> &str {
///         "one-host"
///     }
///
///     fn resolves(&self, upstream: &UpstreamSpec) -> bool {
///         upstream.kube.is_some()
///     }
///
///     fn run(self: Arc<Self>, mut context: DiscoveryContext) -> BoxFuture<'static, Result<(), DiscoveryError>> {
///         Box::pin(async move {
///             loop {
///                 let upstreams = context.upstreams.borrow_and_update().clone();
///                 context.publisher.set_endpoints(
///                     upstreams.keys().map(|r| (r.clone(), vec![Endpoint::new("10.0.0.1", 8080)])).collect(),
///                 );
///                 if context.upstreams.changed().await.is_err() {
///                     return Ok(()); // the runner stopped
///                 }
///             }
///         })
///     }
/// }
/// ```
pub trait Discovery: Send + Sync + 'static {
    /// A short name for logs and for the origin of the upstreams it discovers
    /// (`discovery:<name>`).
    fn name(&self) -> &str;

    /// Whether this plugin finds the endpoints of upstreams like `upstream`. The default,
    /// `false`, suits a plugin that only discovers upstreams.
    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        let _ = upstream;
        false
    }

    /// Runs the plugin. `Ok` means it has nothing more to do (what it published stays); an
    /// error is logged and the plugin is started again after a backoff.
    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>>;
}

/// What a running plugin is handed.
#[derive(Clone)]
pub struct DiscoveryContext {
    /// The upstreams in force that the plugin [`resolves`](Discovery::resolves); wakes on
    /// every change.
    pub upstreams: watch::Receiver<Arc<Upstreams>>,
    /// Where the plugin publishes what it found.
    pub publisher: Publisher,
    /// The config in force: the config source's resources plus the discovered upstreams, for
    /// plugins that read other resources (the Secrets a `secretRef` names). Wakes on every
    /// change; a plugin that only reads it when it polls need not wait on it.
    pub config: watch::Receiver<Arc<SourceSnapshot>>,
}

impl fmt::Debug for DiscoveryContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscoveryContext")
            .field("upstreams", &self.upstreams.borrow().len())
            .field("publisher", &self.publisher)
            .field("config", &self.config.borrow().resources.len())
            .finish()
    }
}

/// Publishes one plugin's findings. Each call replaces what that plugin published before (of
/// that kind); other plugins' findings are untouched. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("plugin", &self.shared.plugin_name(self.index))
            .finish()
    }
}

impl Publisher {
    /// Replaces the upstreams this plugin discovered. An upstream a config source also defines
    /// (same namespace and name) is left to the config source: what a user wrote wins.
    pub fn set_upstreams(&self, upstreams: impl IntoIterator<Item = Upstream>) {
        self.shared
            .set_upstreams(self.index, upstreams.into_iter().collect());
    }

    /// Replaces the functions this plugin found, for every upstream at once (Gloo's FDS): each
    /// upstream in force named here gets them in place of its own list. Upstreams no longer
    /// named get their own list back.
    pub fn set_functions(&self, functions: BTreeMap<ResourceRef, Functions>) {
        self.shared.set_functions(self.index, functions);
    }

    /// Replaces the endpoints this plugin found, for every upstream at once. Only the
    /// upstreams whose list differs from what this plugin published before reach the
    /// translator (the rest are compared, not copied); a plugin that knows what changed can
    /// say only that with [`update_endpoints`](Self::update_endpoints).
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        self.shared
            .set_endpoints(self.index, EndpointsUpdate::Replace(endpoints));
    }

    /// Replaces the endpoints this plugin found for one upstream (an empty list removes them).
    pub fn set_upstream_endpoints(&self, upstream: ResourceRef, endpoints: Vec<Endpoint>) {
        self.update_endpoints([(upstream, endpoints)]);
    }

    /// Replaces the endpoints this plugin found for the upstreams named (an empty list removes
    /// an upstream's), leaving its other upstreams' as they are: the cheapest way to publish
    /// a change, as the translator then rebuilds only these upstreams' assignments.
    pub fn update_endpoints(
        &self,
        changed: impl IntoIterator<Item = (ResourceRef, Vec<Endpoint>)>,
    ) {
        self.shared.set_endpoints(
            self.index,
            EndpointsUpdate::Some(changed.into_iter().collect()),
        );
    }
}

/// What a publisher changes of its plugin's endpoints.
pub(crate) enum EndpointsUpdate {
    /// Everything: upstreams not named have none any more.
    Replace(Endpoints),
    /// These upstreams only (an empty list removes one).
    Some(Vec<(ResourceRef, Vec<Endpoint>)>),
}

/// Functions a plugin found for an upstream in force (Gloo's function discovery, FDS): they
/// replace the upstream's own list, whether a user wrote the upstream or a plugin discovered
/// it, as Gloo's FDS rewrites the upstream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Functions {
    /// The `aws.lambdaFunctions` of an `aws` upstream (Lambda function discovery).
    Lambda(Vec<LambdaFunctionSpec>),
}

impl Functions {
    /// Puts the functions into `spec`; false (and `spec` untouched) if `spec` is not of the
    /// functions' upstream type.
    pub fn apply(&self, spec: &mut UpstreamSpec) -> bool {
        match (self, spec.aws.as_mut()) {
            (Functions::Lambda(functions), Some(aws)) => {
                aws.lambda_functions = functions.clone();
                true
            }
            _ => false,
        }
    }
}

/// Why a plugin stopped: logged with the plugin's name; the plugin is started again.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DiscoveryError {
    message: String,
}

impl DiscoveryError {
    /// An error saying `message` (name what failed and where: the URL, the resource).
    pub fn new(message: impl fmt::Display) -> Self {
        DiscoveryError {
            message: message.to_string(),
        }
    }
}
