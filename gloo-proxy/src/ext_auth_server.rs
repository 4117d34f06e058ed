//! The ext auth service `gloo run` and `gloo control-plane` host in-process, as Gloo's
//! default install runs its ext auth server next to the gateway: Envoy's
//! `envoy.service.auth.v3.Authorization` (gloo-filters'
//! [`ExtAuthzService`](gloo_filters::extauth::grpc::ExtAuthzService)), loaded with the
//! AuthConfigs of the configuration in force (gloo-core's [`ExtAuthServerConfig`]: each
//! AuthConfig as Gloo's `ExtAuthConfig`, its Secrets resolved) and updated live. The proxies
//! call it as the Settings say (`extauth.extauthzServerRef`, through their own cluster of that
//! upstream): gloo-proxy's ext_authz filter and a stock Envoy's alike.
//!
//! * **Where it listens**: [`ExtAuthListen`]: an address, `off`, or (the default) `auto`: the
//!   address of the Settings' `extauthzServerRef` upstream when that is a `static` upstream
//!   with a host on the loopback interface (`127.0.0.1`, `::1`, `localhost`; the first such
//!   host), so the proxies reach this process where the configuration already points them.
//!   When the Settings name no such server (another host, another kind of upstream, the HTTP
//!   `httpService` transport, which this service does not speak), `auto` hosts nothing; when
//!   that upstream moves, the service moves with it. An address that cannot be bound is
//!   retried every second (and logged).
//! * **Updates**: every accepted configuration change is applied at once, AuthConfig by
//!   AuthConfig: an unchanged one keeps its built steps (an OIDC login in flight keeps its
//!   flow key and discovery cache), a changed one is rebuilt; one the service cannot build
//!   keeps its last good version serving, and the refusal is logged (as one gloo-core
//!   rejects does: the translation hands on its last good version). AuthConfigs that
//!   disappear are dropped, and requests naming them are refused (`403`, fail closed). The
//!   user id header follows the Settings' `extauth.userIdHeader`.
//! * **Sessions**: OIDC sessions are kept where each AuthConfig says: cookies, or the Redis
//!   its `userSession.redis.options.host` names (as Gloo's ext auth server reads it: the
//!   rate limit service's `--redis-url` does not apply to them).
//!
//! The hosting needs the `extauth-server` feature (on by default); without it, asking for an
//! address is an error and `auto` hosts nothing.
//!
//! Deviations from Gloo's ext auth server: only the gRPC transport is served; the identity
//! providers are reached over plain HTTP (gloo-filters' default clients); Gloo's server
//! listens on its own port (8083) whatever the Settings say, this one where they point.
//!
//! ```
//! use gloo_core::model::ResourceRef;
//! use gloo_proxy::ext_auth_server::{
//!     auto_address, ExtAuthListen, ExtAuthServerConfig, ExtAuthServerOptions,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `--extauth-server auto`, the default; `ControlPlane::host_ext_auth_service` hosts the
//! // service as the options say, fed with every configuration the control plane accepts.
//! let options = ExtAuthServerOptions { listen: "auto".parse()? };
//! assert_eq!(options.listen, ExtAuthListen::Auto);
//!
//! // With `auto`, the service listens where the Settings' `extauthzServerRef` upstream is,
//! // when that is this machine.
//! let local = ExtAuthServerConfig {
//!     grpc_server: Some(ResourceRef::new("gloo-system", "extauth")),
//!     grpc_server_static_hosts: vec![("localhost".into(), 8083)],
//!     ..Default::default()
//! };
//! assert_eq!(auto_address(&local), Some(([127, 0, 0, 1], 8083).into()));
//! // An ext auth server on another host is not this process's to run.
//! let remote = ExtAuthServerConfig {
//!     grpc_server_static_hosts: vec![("extauth.internal".into(), 8083)],
//!     ..local
//! };
//! assert_eq!(auto_address(&remote), None);
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

pub use gloo_core::translate::ExtAuthServerConfig;

use crate::hosting::{loopback_address, Listen};

/// Where the hosted ext auth service listens: `auto` is the Settings' server address when it
/// is local (see the [module docs](self)).
pub type ExtAuthListen = Listen;

/// How `gloo run` and `gloo control-plane` host the ext auth service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtAuthServerOptions {
    /// Where it listens.
    pub listen: ExtAuthListen,
}

/// Why the ext auth service could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum ExtAuthServerError {
    /// This build has no ext auth service.
    #[error("ext auth service: this gloo was built without the `extauth-server` feature")]
    Unsupported,
}

/// Where `auto` listens for `config`: the first loopback host of the Settings' gRPC ext auth
/// server, when it is a static upstream.
pub fn auto_address(config: &ExtAuthServerConfig) -> Option<SocketAddr> {
    config.grpc_server.as_ref()?;
    loopback_address(&config.grpc_server_static_hosts)
}

#[cfg(feature = "extauth-server")]
pub use self::hosted::ExtAuthServer;

#[cfg(feature = "extauth-server")]
mod hosted {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex, PoisonError, RwLock};

    use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
    use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse};
    use gloo_filters::extauth::config::ExtAuthConfig;
    use gloo_filters::extauth::grpc::ExtAuthzService;
    use gloo_filters::extauth::{AuthConfig, BuildOptions};
    use serde_json::Value;
    use tokio::sync::watch;

    use super::{auto_address, ExtAuthListen, ExtAuthServerConfig, ExtAuthServerOptions};
    use crate::hosting::{serve_grpc, Host};

    /// The service in force, replaced when the user id header changes (the configs are
    /// shared by every clone, so inserting into one serves in all).
    #[derive(Clone)]
    struct Current(Arc<RwLock<ExtAuthzService>>);

    impl Current {
        fn get(&self) -> ExtAuthzService {
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        }
    }

    #[tonic::async_trait]
    impl Authorization for Current {
        async fn check(
            &self,
            request: tonic::Request<CheckRequest>,
        ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
            let service = self.get();
            Ok(tonic::Response::new(
                service.check(request.into_inner()).await,
            ))
        }
    }

    /// What is loaded: the JSON each config in force was built from, and the user id header.
    #[derive(Default)]
    struct Loaded {
        configs: BTreeMap<String, Value>,
        user_id_header: Option<String>,
    }

    /// The hosted ext auth service (see the [module docs](super)).
    pub struct ExtAuthServer {
        listen: ExtAuthListen,
        current: Current,
        build: BuildOptions,
        host: Arc<Host>,
        loaded: Mutex<Loaded>,
    }

    impl std::fmt::Debug for ExtAuthServer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ExtAuthServer")
                .field("listen", &self.listen)
                .field("local_addr", &self.local_addr())
                .finish_non_exhaustive()
        }
    }

    impl ExtAuthServer {
        /// A service without configs yet.
        pub fn new(options: &ExtAuthServerOptions) -> Self {
            let current = Current(Arc::new(RwLock::new(ExtAuthzService::new())));
            let serving = current.clone();
            let host = Host::new("ext auth service", move |incoming| {
                tokio::spawn(serve_grpc(
                    "ext auth service",
                    envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer::new(serving.clone()),
                    incoming,
                ))
            });
            Self {
                listen: options.listen,
                current,
                build: BuildOptions::new(),
                host: Arc::new(host),
                loaded: Mutex::default(),
            }
        }

        /// Where it listens, once it does.
        pub fn local_addr(&self) -> Option<SocketAddr> {
            self.host.local_addr()
        }

        /// Starts listening on the address the options give (nothing for `auto` and `off`);
        /// an address that cannot be bound is retried every second.
        pub fn listen(&self) -> Option<SocketAddr> {
            match self.listen {
                ExtAuthListen::At(addr) => self.host.listen_on(addr),
                ExtAuthListen::Auto | ExtAuthListen::Off => None,
            }
        }

        /// Applies `config` now, then every update `updates` announces, until it closes.
        pub fn follow(
            self: Arc<Self>,
            mut updates: watch::Receiver<Arc<ExtAuthServerConfig>>,
        ) -> tokio::task::JoinHandle<()> {
            tokio::spawn(async move {
                loop {
                    let config = updates.borrow_and_update().clone();
                    self.apply(&config);
                    if updates.changed().await.is_err() {
                        return;
                    }
                }
            })
        }

        /// Loads what `config` asks for (see the [module docs](super)): changed AuthConfigs
        /// are rebuilt, one that cannot be built keeps its last good version (logged), those
        /// no longer asked for are dropped. With `auto`, listens where the Settings point
        /// (or stops when they point nowhere local).
        pub fn apply(&self, config: &ExtAuthServerConfig) {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            if loaded.user_id_header.as_deref() != Some(config.user_id_header.as_str()) {
                match self
                    .current
                    .get()
                    .user_id_header(Some(config.user_id_header.as_str()))
                {
                    Ok(service) => {
                        *self.current.0.write().unwrap_or_else(PoisonError::into_inner) = service;
                        loaded.user_id_header = Some(config.user_id_header.clone());
                    }
                    Err(e) => eprintln!(
                        "ext auth service: Settings extauth.userIdHeader refused ({e}); the last good one stays in force"
                    ),
                }
            }
            let service = self.current.get();
            for (id, json) in &config.configs {
                if loaded.configs.get(id) == Some(json) {
                    continue;
                }
                match build(json, &self.build) {
                    Ok(auth) if auth.id() == id => {
                        service.insert(auth);
                        loaded.configs.insert(id.clone(), json.clone());
                    }
                    Ok(auth) => eprintln!(
                        "ext auth service: AuthConfig {id} refused (it names itself {:?})",
                        auth.id()
                    ),
                    Err(why) => {
                        let kept = if loaded.configs.contains_key(id) {
                            "its last good version stays in force"
                        } else {
                            "requests naming it are refused"
                        };
                        eprintln!("ext auth service: AuthConfig {id} refused ({why}); {kept}");
                    }
                }
            }
            let gone: Vec<String> = loaded
                .configs
                .keys()
                .filter(|id| !config.configs.contains_key(*id))
                .cloned()
                .collect();
            for id in gone {
                service.remove(&id);
                loaded.configs.remove(&id);
            }
            drop(loaded);
            if self.listen == ExtAuthListen::Auto {
                match auto_address(config) {
                    Some(addr) => {
                        self.host.listen_on(addr);
                    }
                    None => self.host.stop(),
                }
            }
        }
    }

    /// One AuthConfig's steps from its JSON; the error names the field.
    fn build(json: &Value, options: &BuildOptions) -> Result<AuthConfig, String> {
        let config = ExtAuthConfig::from_json(&json.to_string()).map_err(|e| e.to_string())?;
        AuthConfig::from_config_with(&config, options).map_err(|e| e.to_string())
    }
}

#[cfg(all(test, feature = "extauth-server"))]
mod tests {
    use super::*;

    use gloo_test_ports::free_port;

    fn pointing_at(host: &str, port: u16) -> ExtAuthServerConfig {
        ExtAuthServerConfig {
            grpc_server: Some(gloo_core::model::ResourceRef::new("gloo-system", "extauth")),
            grpc_server_static_hosts: vec![(host.to_string(), u32::from(port))],
            user_id_header: "x-user-id".to_string(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn auto_listens_where_the_settings_point_and_follows_them() {
        let server = ExtAuthServer::new(&ExtAuthServerOptions::default());
        assert_eq!(server.listen(), None, "auto waits for the Settings");
        let (first, second) = (free_port(), free_port());
        server.apply(&pointing_at("localhost", first));
        assert_eq!(server.local_addr(), Some(([127, 0, 0, 1], first).into()));
        // The Upstream moves: so does the service (the old port is free again).
        server.apply(&pointing_at("127.0.0.1", second));
        assert_eq!(server.local_addr(), Some(([127, 0, 0, 1], second).into()));
        // A server elsewhere, or none: nothing hosted.
        server.apply(&pointing_at("10.1.2.3", first));
        assert_eq!(server.local_addr(), None);
        // Back to the first port: the stopped listener closes once its task is cancelled, so
        // binding may need a retry (every second).
        server.apply(&pointing_at("127.0.0.1", first));
        let mut waited = 0;
        while server.local_addr().is_none() && waited < 50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            waited += 1;
        }
        assert_eq!(server.local_addr(), Some(([127, 0, 0, 1], first).into()));
        server.apply(&ExtAuthServerConfig::default());
        assert_eq!(server.local_addr(), None);
    }

    #[tokio::test]
    async fn an_address_or_off_ignores_the_settings() {
        let port = free_port();
        let fixed = ExtAuthServer::new(&ExtAuthServerOptions {
            listen: ExtAuthListen::At(([127, 0, 0, 1], port).into()),
        });
        assert_eq!(fixed.listen(), Some(([127, 0, 0, 1], port).into()));
        fixed.apply(&pointing_at("127.0.0.1", free_port()));
        assert_eq!(fixed.local_addr(), Some(([127, 0, 0, 1], port).into()));
        let off = ExtAuthServer::new(&ExtAuthServerOptions {
            listen: ExtAuthListen::Off,
        });
        off.apply(&pointing_at("127.0.0.1", free_port()));
        assert_eq!(off.local_addr(), None);
    }
}
