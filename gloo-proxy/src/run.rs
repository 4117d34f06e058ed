//! `gloo run` and `gloo proxy`: the proxy with its control plane in one process, or as a shard
//! of a remote control plane.
//!
//! `gloo run --config gloo-config --workers 2`, with one more filter on every route (see
//! [`crate::filter`] for writing one):
//!
//! ```no_run
//! use gloo_proxy::gateway::ProxyServer;
//! use gloo_proxy::run::{run, RunError, RunOptions};
//! # use envoy_types::pb::google::protobuf::Any;
//! # use gloo_proxy::filter::{FilterFactory, FilterLayer};
//! # struct MyFilter;
//! # impl FilterFactory for MyFilter {
//! #     fn layer(&self, _: &Any, _: Option<&Any>) -> Result<Option<FilterLayer>, String> {
//! #         Ok(None)
//! #     }
//! # }
//!
//! # async fn example() -> Result<(), RunError> {
//! // The command's defaults: the `gateway-proxy` proxy, the admin endpoint on 127.0.0.1:19000,
//! // the rate limit and ext auth services, config sources and discovery as the directory's
//! // Settings say; here with an access log as well.
//! let options = RunOptions {
//!     access_log: true,
//!     ..RunOptions::new("gloo-config")
//! };
//! let server = ProxyServer::new()
//!     .workers(2)
//!     .filter_everywhere("example.my_filter", MyFilter);
//! // Serves until the process is interrupted (Ctrl-C).
//! run(options, server).await
//! # }
//! ```

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;

use gloo_xds::client::ClientConfig;

use crate::control_plane::{self, ControlPlane, ControlPlaneError, WRITE_NAMESPACE};
use crate::ext_auth_server::ExtAuthServerOptions;
use crate::gateway::{feed_from_ads, feed_from_cache, GatewayError, ProxyServer};
use crate::rate_limit_server::RateLimitServerOptions;
use crate::sources::SourceOptions;

/// Why `gloo run` or `gloo proxy` stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The control plane failed.
    #[error(transparent)]
    ControlPlane(#[from] ControlPlaneError),
    /// The proxy failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
}

/// Options of `gloo run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The config directory.
    pub config: PathBuf,
    /// Which proxy (Gateway `proxyNames` entry) this process serves.
    pub proxy_name: String,
    /// The admin endpoint.
    pub admin: Option<SocketAddr>,
    /// Also serve the translation over xDS here (for Envoy fleets and other shards).
    pub xds_addr: Option<SocketAddr>,
    /// Keep statuses in this JSON file.
    pub status_file: Option<PathBuf>,
    /// Log every request.
    pub access_log: bool,
    /// The rate limit service this process hosts.
    pub rate_limit: RateLimitServerOptions,
    /// The ext auth service this process hosts.
    pub ext_auth: ExtAuthServerOptions,
    /// Config sources and discovery beside the Settings (see [`crate::sources`]).
    pub sources: SourceOptions,
}

/// Where `gloo run` and `gloo proxy` serve their admin endpoint unless told otherwise.
pub const DEFAULT_ADMIN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 19000));

impl RunOptions {
    /// `gloo run --config <config>` with the command's defaults: the `gateway-proxy` proxy, the
    /// admin endpoint on [`DEFAULT_ADMIN`], no xDS server, no status file, no access log, and
    /// the rate limit and ext auth services, config sources and discovery as the directory's
    /// Settings say.
    ///
    /// ```
    /// use gloo_proxy::run::{RunOptions, DEFAULT_ADMIN};
    ///
    /// let options = RunOptions::new("gloo-config");
    /// assert_eq!(options.proxy_name, "gateway-proxy");
    /// assert_eq!(options.admin, Some(DEFAULT_ADMIN));
    /// assert!(options.xds_addr.is_none() && !options.access_log);
    /// ```
    pub fn new(config: impl Into<PathBuf>) -> Self {
        RunOptions {
            config: config.into(),
            proxy_name: gloo_core::model::gateway::DEFAULT_PROXY_NAME.to_string(),
            admin: Some(DEFAULT_ADMIN),
            xds_addr: None,
            status_file: None,
            access_log: false,
            rate_limit: RateLimitServerOptions::default(),
            ext_auth: ExtAuthServerOptions::default(),
            sources: SourceOptions::default(),
        }
    }
}

/// `gloo run`: watches the directory (and the config sources and discovery its Settings
/// name, see [`crate::sources`]), translates it, and serves the translation with the
/// proxy in this process (reading the snapshot cache directly: no network hop), hosting the
/// rate limit and ext auth services as the options say. Returns when the process is interrupted.
pub async fn run(options: RunOptions, server: ProxyServer) -> Result<(), RunError> {
    let control_plane = Arc::new(
        ControlPlane::start_with(
            &options.config,
            options.status_file.clone(),
            options.sources.clone(),
        )
        .await?,
    );
    let _rate_limit = control_plane.host_rate_limit_service(&options.rate_limit)?;
    let _ext_auth = control_plane.host_ext_auth_service(&options.ext_auth)?;
    let role = format!("{WRITE_NAMESPACE}~{}", options.proxy_name);
    let feed = feed_from_cache(control_plane.cache().clone(), &role);
    let board = control_plane.board().clone();
    let server = server
        .admin(options.admin)
        .access_log(options.access_log)
        .statuses(Arc::new(move || {
            serde_json::to_value(board.reports()).unwrap_or(serde_json::Value::Null)
        }));
    let xds = match options.xds_addr {
        Some(addr) => {
            let listener = control_plane::bind_xds(addr).await?;
            let cp = control_plane.clone();
            Some(tokio::spawn(async move {
                cp.serve_xds(listener, std::future::pending()).await
            }))
        }
        None => None,
    };
    let result = tokio::select! {
        r = server.run(feed) => r.map_err(RunError::from),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    if let Some(task) = xds {
        task.abort();
    }
    result
}

/// Options of `gloo proxy`.
#[derive(Debug, Clone)]
pub struct ShardOptions {
    /// The control plane, e.g. `http://127.0.0.1:9977`.
    pub xds: String,
    /// This proxy's role, `<namespace>~<proxy name>`.
    pub role: String,
    /// This proxy's node id.
    pub node_id: String,
    /// The admin endpoint.
    pub admin: Option<SocketAddr>,
    /// Log every request.
    pub access_log: bool,
}

impl ShardOptions {
    /// `gloo proxy --xds <xds> --role <role>` with the command's defaults: a node id made of
    /// the role's proxy name and the process id, the admin endpoint on [`DEFAULT_ADMIN`], no
    /// access log.
    ///
    /// ```
    /// use gloo_proxy::run::{ShardOptions, DEFAULT_ADMIN};
    ///
    /// let options = ShardOptions::new("http://127.0.0.1:9977", "gloo-system~gateway-proxy");
    /// assert_eq!(options.node_id, format!("gateway-proxy-{}", std::process::id()));
    /// assert_eq!(options.admin, Some(DEFAULT_ADMIN));
    /// ```
    pub fn new(xds: impl Into<String>, role: impl Into<String>) -> Self {
        let role = role.into();
        let name = role.split_once('~').map_or(role.as_str(), |(_, name)| name);
        let node_id = format!("{name}-{}", std::process::id());
        ShardOptions {
            xds: xds.into(),
            role,
            node_id,
            admin: Some(DEFAULT_ADMIN),
            access_log: false,
        }
    }
}

/// `gloo proxy`: subscribes to a control plane over delta ADS and serves what it sends. When
/// the control plane goes away the last configuration keeps serving while the client
/// reconnects.
///
/// ```no_run
/// use gloo_proxy::gateway::ProxyServer;
/// use gloo_proxy::run::{shard, RunError, ShardOptions};
///
/// # async fn example() -> Result<(), RunError> {
/// // A shard of the `gateway-proxy` proxy, fed by `gloo control-plane` on another host.
/// let options = ShardOptions {
///     node_id: "gateway-proxy-1".into(),
///     ..ShardOptions::new("http://control-plane.internal:9977", "gloo-system~gateway-proxy")
/// };
/// shard(options, ProxyServer::new()).await
/// # }
/// ```
pub async fn shard(options: ShardOptions, server: ProxyServer) -> Result<(), RunError> {
    let client = ClientConfig::new(options.xds, options.node_id, options.role);
    let (feed, _client) = feed_from_ads(client, server.registry().clone());
    let server = server.admin(options.admin).access_log(options.access_log);
    tokio::select! {
        r = server.run(feed) => r.map_err(RunError::from),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}
