//! The admin endpoint: `/ready`, `/config_dump`, `/clusters`, `/statuses`,
//! `/stats/prometheus`.
//!
//! [`ProxyServer::admin`](crate::gateway::ProxyServer::admin) serves it. `/config_dump` is
//! [`config_dump`] of the configuration in force:
//!
//! ```
//! use std::sync::Arc;
//! use gloo_proxy::admin::config_dump;
//! use gloo_proxy::config::{Compiler, XdsResources};
//! use gloo_proxy::filter::{FilterRegistry, HttpService};
//! use gloo_proxy::proxy::RouteService;
//! use gloo_proxy::stats::Stats;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # std::fs::write(dir.path().join("petstore.yaml"), r#"
//! # apiVersion: gloo.solo.io/v1
//! # kind: Upstream
//! # metadata: {name: petstore, namespace: gloo-system}
//! # spec: {static: {hosts: [{addr: 127.0.0.1, port: 8081}]}}
//! # ---
//! # apiVersion: gateway.solo.io/v1
//! # kind: VirtualService
//! # metadata: {name: default, namespace: gloo-system}
//! # spec:
//! #   virtualHost:
//! #     domains: ['*']
//! #     routes:
//! #     - matchers: [{prefix: /petstore}]
//! #       routeAction: {single: {upstream: {name: petstore, namespace: gloo-system}}}
//! # "#)?;
//! # let control_plane = gloo_proxy::control_plane::ControlPlane::start(dir.path(), None)?;
//! # let role = "gloo-system~gateway-proxy";
//! // The resources gloo-core translated from a `petstore` Upstream and a VirtualService.
//! let resources = XdsResources::from_snapshot(&control_plane.cache().subscribe(role).borrow());
//! let stats = Arc::new(Stats::default());
//! let registry = FilterRegistry::with_builtins();
//! let mut compiler = Compiler::new(registry, stats, HttpService::new(RouteService), 1);
//! let config = compiler.compile(resources);
//!
//! let dump = config_dump(&config);
//! assert_eq!(dump["clusters"][0]["name"], "petstore_gloo-system");
//! // The endpoints each cluster balances over, with their health and load.
//! let live = &dump["live_endpoints"]["petstore_gloo-system"][0];
//! assert_eq!(live["address"], "127.0.0.1:8081");
//! assert_eq!(live["healthy"], true);
//! // Resources the proxy refused (their last good version stays in force): none here.
//! assert_eq!(dump["errors"], serde_json::json!([]));
//! # Ok(())
//! # }
//! ```

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};

use crate::body::Body;
use crate::config::{ProxyConfig, CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE};
use crate::proxy::Proxy;

/// A source of resource statuses for `/statuses` (the control plane's, in `gloo run`).
pub type StatusSource = Arc<dyn Fn() -> Value + Send + Sync>;

/// What the admin endpoint reads.
#[derive(Clone)]
pub struct AdminState {
    /// The proxy.
    pub proxy: Arc<Proxy>,
    /// Set once a first configuration is in force.
    pub ready: Arc<AtomicBool>,
    /// Statuses to show at `/statuses`, besides the proxy's own config errors.
    pub statuses: Option<StatusSource>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_response(value: &Value) -> Response<Body> {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("\"{e}\""));
    respond(StatusCode::OK, "application/json", text + "\n")
}

/// `/config_dump`: every resource in force with its version, the endpoints each cluster is
/// balancing over, and the resources that were refused.
pub fn config_dump(config: &ProxyConfig) -> Value {
    let section = |type_url: &str| -> Value {
        Value::Array(
            config
                .resources
                .of_type(type_url)
                .iter()
                .map(|(name, r)| {
                    json!({
                        "name": name,
                        "version": r.version,
                        "resource": gloo_core::xds::any_to_json(&r.body)
                            .unwrap_or_else(|e| Value::String(e.to_string())),
                    })
                })
                .collect(),
        )
    };
    let mut live = serde_json::Map::new();
    let mut names: Vec<&String> = config.clusters.keys().collect();
    names.sort();
    for name in names {
        let cluster = &config.clusters[name];
        let endpoints: Vec<Value> = cluster
            .members()
            .iter()
            .map(|e| {
                json!({
                    "address": e.address.to_string(),
                    "weight": e.weight,
                    "priority": e.priority,
                    "healthy": e.is_healthy(),
                    "active_requests": e.active(),
                })
            })
            .collect();
        live.insert(name.clone(), Value::Array(endpoints));
    }
    json!({
        "listeners": section(LISTENER_TYPE),
        "routes": section(ROUTE_TYPE),
        "clusters": section(CLUSTER_TYPE),
        "endpoints": section(ENDPOINT_TYPE),
        "live_endpoints": live,
        "errors": config.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
    })
}

fn clusters_text(config: &ProxyConfig) -> String {
    let mut names: Vec<&String> = config.clusters.keys().collect();
    names.sort();
    let mut out = String::new();
    for name in names {
        for e in config.clusters[name].members().iter() {
            out.push_str(&format!(
                "{name}::{}::health_flags::{}\n{name}::{}::priority::{}\n{name}::{}::rq_active::{}\n",
                e.address,
                if e.is_healthy() {
                    "healthy"
                } else {
                    "/failed_active_hc"
                },
                e.address,
                e.priority,
                e.address,
                e.active()
            ));
        }
    }
    out
}

fn handle(state: &AdminState, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let proxy = &state.proxy;
    match req.uri().path() {
        "/ready" => {
            if state.ready.load(Ordering::Acquire) {
                respond(StatusCode::OK, "text/plain", "LIVE\n".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "PRE_INITIALIZING\n".into(),
                )
            }
        }
        "/config_dump" => json_response(&config_dump(&proxy.config())),
        "/clusters" => respond(StatusCode::OK, "text/plain", clusters_text(&proxy.config())),
        "/statuses" => {
            let errors: Vec<String> = proxy
                .config()
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect();
            let control_plane = state.statuses.as_ref().map(|s| s()).unwrap_or(Value::Null);
            json_response(&json!({ "proxy_errors": errors, "control_plane": control_plane }))
        }
        "/stats/prometheus" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            proxy.stats().to_prometheus(),
        ),
        "/" => respond(
            StatusCode::OK,
            "text/plain",
            "/ready\n/config_dump\n/clusters\n/statuses\n/stats/prometheus\n".into(),
        ),
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// Serves the admin endpoint on a bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, state: AdminState) -> std::io::Result<()> {
    tracing::info!("admin endpoint on {}", listener.local_addr()?);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("admin accept failed: {e}");
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let r = handle(&state, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
