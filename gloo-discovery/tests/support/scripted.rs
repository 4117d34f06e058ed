//! A discovery plugin the test publishes through by hand (shared with gloo-proxy's tests,
//! which include this file by path).

use std::sync::Arc;

use gloo_core::model::upstream::UpstreamSpec;
use gloo_discovery::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError, Publisher};
use tokio::sync::watch;

/// Hands its publisher to the test (through `publisher`) and resolves `kube` upstreams with
/// whatever the test publishes; runs until stopped.
pub struct Scripted {
    /// Its name.
    pub name: &'static str,
    /// Where its publisher goes when it runs.
    pub publisher: watch::Sender<Option<Publisher>>,
}

impl Discovery for Scripted {
    fn name(&self) -> &str {
        self.name
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.kube.is_some()
    }

    fn run(
        self: Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            self.publisher.send_replace(Some(context.publisher.clone()));
            std::future::pending::<()>().await;
            Ok(())
        })
    }
}
