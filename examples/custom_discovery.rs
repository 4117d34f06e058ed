//! A discovery plugin of your own, in your own crate: the endpoints of `kube` upstreams read
//! from a plain file instead of a Kubernetes cluster (handy to run Kubernetes-shaped Gloo
//! config on a laptop), served by gloo's control plane and proxy in one process.
//!
//! ```sh
//! cargo run -p gloo-examples --bin custom_discovery -- CONFIG_DIR ENDPOINTS_FILE [ADMIN_ADDR]
//! ```
//!
//! The endpoints file has one Service per line, `<namespace>/<name> <ip:port> [<ip:port>...]`,
//! `#` starting a comment:
//!
//! ```text
//! default/web 127.0.0.1:8081 127.0.0.1:8082
//! ```
//!
//! A `kube` upstream (`kube: {serviceName: web, serviceNamespace: default, servicePort: 80}`)
//! gets the addresses of its Service's line. The file is read again whenever it changes
//! (checked every 200 ms) and whenever the upstreams in force change; an endpoint change is
//! served without translating any route. A file that cannot be read or parsed is an error:
//! gloo's runner logs it and starts the plugin again after a backoff, while the endpoints
//! read last keep serving.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gloo_core::model::upstream::UpstreamSpec;
use gloo_core::translate::{Endpoint, Endpoints};
use gloo_discovery::{BoxFuture, Discovery, DiscoveryContext, DiscoveryError};
use gloo_proxy::control_plane::{ControlPlane, WRITE_NAMESPACE};
use gloo_proxy::gateway::{feed_from_cache, ProxyServer};
use gloo_proxy::sources::SourceOptions;

/// Endpoints of `kube` upstreams from a file (see the module docs for its format).
pub struct FileDiscovery {
    path: PathBuf,
    interval: Duration,
}

impl FileDiscovery {
    /// Reads `path`, checking it for changes every 200 ms.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileDiscovery {
            path: path.into(),
            interval: Duration::from_millis(200),
        }
    }

    /// The file's Services: `(namespace, name)` to their endpoints. Errors name the line.
    fn read(&self) -> Result<BTreeMap<(String, String), Vec<Endpoint>>, DiscoveryError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| DiscoveryError::new(format!("{}: {e}", self.path.display())))?;
        let mut services = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let at = |what: String| {
                DiscoveryError::new(format!("{}:{}: {what}", self.path.display(), index + 1))
            };
            let mut words = line.split_whitespace();
            let service = words.next().unwrap_or_default();
            let (namespace, name) = service
                .split_once('/')
                .ok_or_else(|| at(format!("{service:?} is not <namespace>/<name>")))?;
            let endpoints = words
                .map(|word| {
                    let address: std::net::SocketAddr = word
                        .parse()
                        .map_err(|_| at(format!("{word:?} is not <ip>:<port>")))?;
                    Ok(Endpoint::new(
                        address.ip().to_string(),
                        u32::from(address.port()),
                    ))
                })
                .collect::<Result<Vec<_>, DiscoveryError>>()?;
            services.insert((namespace.to_string(), name.to_string()), endpoints);
        }
        Ok(services)
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Discovery for FileDiscovery {
    fn name(&self) -> &str {
        "file"
    }

    /// Only `kube` upstreams: the runner hands this plugin those in force, user-written or
    /// discovered by another plugin.
    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.kube.is_some()
    }

    fn run(
        self: Arc<Self>,
        mut context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            loop {
                let stamp = modified(&self.path);
                let services = self.read()?;
                let upstreams = context.upstreams.borrow_and_update().clone();
                let mut endpoints = Endpoints::new();
                for (reference, upstream) in upstreams.iter() {
                    let Some(kube) = &upstream.spec.kube else {
                        continue;
                    };
                    let service = (
                        kube.service_namespace.clone().unwrap_or_default(),
                        kube.service_name.clone().unwrap_or_default(),
                    );
                    if let Some(found) = services.get(&service) {
                        endpoints.insert(reference.clone(), found.clone());
                    }
                }
                // Publishing what was published already changes nothing downstream.
                context.publisher.set_endpoints(endpoints);
                // Until the file or the upstreams change.
                loop {
                    tokio::select! {
                        changed = context.upstreams.changed() => {
                            if changed.is_err() {
                                return Ok(()); // the runner stopped
                            }
                            break;
                        }
                        _ = tokio::time::sleep(self.interval) => {
                            if modified(&self.path) != stamp {
                                break;
                            }
                        }
                    }
                }
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init(); // RUST_LOG=info for more
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: custom_discovery CONFIG_DIR ENDPOINTS_FILE [ADMIN_ADDR]";
    let dir = args.get(1).ok_or(usage)?;
    let file = args.get(2).ok_or(usage)?;
    let admin = args
        .get(3)
        .map_or("127.0.0.1:19000", String::as_str)
        .parse()?;
    // The directory and what its Settings name, plus our plugin beside gloo's own.
    let options = SourceOptions {
        plugins: vec![Arc::new(FileDiscovery::new(file))],
        ..SourceOptions::default()
    };
    let control_plane = ControlPlane::start_with(dir.as_ref(), None, options).await?;
    let feed = feed_from_cache(
        control_plane.cache().clone(),
        &format!("{WRITE_NAMESPACE}~gateway-proxy"),
    );
    ProxyServer::new().admin(Some(admin)).run(feed).await?;
    Ok(())
}
