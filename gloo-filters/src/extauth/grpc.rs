//! Envoy's ext_authz gRPC service (`envoy.service.auth.v3.Authorization`) over many
//! [`AuthConfig`]s: what a stock Envoy's `envoy.filters.http.ext_authz` calls, as it calls
//! Gloo's ext auth server. Enabled by the `extauth-grpc` cargo feature.
//!
//! Gloo's translation names the config of a route in the route's `ExtAuthzPerRoute`
//! `check_settings.context_extensions` under `config_id` (`<namespace>.<name>` of the
//! `AuthConfig`, its `authConfigRefName`); the service checks the request with that config
//! and answers as Gloo's server does:
//!
//! * allowed: `OK` with an `OkHttpResponse` whose `headers` set the steps' upstream headers
//!   (replacing the client's; several values of one header are joined with `,`, as Envoy
//!   joins appended values) and the user id header; `headers_to_remove` holds the user id header when
//!   nobody was identified, so a client cannot claim an id (Gloo's sanitize filter does this
//!   inside its Envoy build); `response_headers_to_add` carries the steps' response headers;
//! * denied: `PERMISSION_DENIED` (`UNAUTHENTICATED` for a `401`) with a `DeniedHttpResponse`
//!   carrying the status, headers and body;
//! * a request without `config_id`, or naming a config the service does not hold, is denied
//!   with `403` (fail closed).
//!
//! Configs are replaced live ([`ExtAuthzService::apply`], [`insert`](ExtAuthzService::insert),
//! [`remove`](ExtAuthzService::remove)): a check in flight keeps the config it started with.
//!
//! ```
//! use gloo_filters::extauth::config::ExtAuthConfig;
//! use gloo_filters::extauth::grpc::ExtAuthzService;
//! use gloo_filters::extauth::BuildOptions;
//!
//! let service = ExtAuthzService::new();
//! service.apply(
//!     &[ExtAuthConfig::from_json(r#"{"authConfigRefName": "gloo-system.keys",
//!         "configs": [{"apiKeyAuth": {"validApiKeys": {"s3cr3t": {"username": "robot"}}}}]}"#)?],
//!     &BuildOptions::new(),
//! )?;
//! assert!(service.get("gloo-system.keys").is_some());
//! let _server = service.into_server(); // serve with tonic::transport::Server
//! # Ok::<_, gloo_filters::extauth::ConfigError>(())
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue as PbHeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::{
    Authorization, AuthorizationServer,
};
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    attribute_context, CheckRequest as PbCheckRequest, CheckResponse, DeniedHttpResponse,
    OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tonic::{Request, Response, Status};

use super::config::ExtAuthConfig;
use super::error::ConfigError;
use super::layer::DEFAULT_USER_ID_HEADER;
use super::service::{response_actions, upstream_values};
use super::{AuthConfig, BuildOptions, CheckRequest, Decision, Denied};

/// The context extension naming the config, as Gloo's translation writes it.
pub const CONFIG_ID_KEY: &str = "config_id";

const GRPC_OK: i32 = 0;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

type Configs = HashMap<String, Arc<AuthConfig>>;

/// `envoy.service.auth.v3.Authorization` over the configs it holds; see the
/// [module docs](self). Cheap to clone: clones share the configs.
#[derive(Clone)]
pub struct ExtAuthzService {
    configs: Arc<RwLock<Arc<Configs>>>,
    user_id_header: Option<HeaderName>,
}

impl std::fmt::Debug for ExtAuthzService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtAuthzService")
            .field("configs", &self.snapshot().keys().collect::<Vec<_>>())
            .field("user_id_header", &self.user_id_header)
            .finish()
    }
}

impl Default for ExtAuthzService {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtAuthzService {
    /// No configs yet; the user id goes to `x-user-id`.
    pub fn new() -> Self {
        Self {
            configs: Arc::new(RwLock::new(Arc::new(HashMap::new()))),
            user_id_header: Some(HeaderName::from_static(DEFAULT_USER_ID_HEADER)),
        }
    }

    /// The user id header (Gloo's `Settings.extauth.userIdHeader`); `None` sends none.
    pub fn user_id_header(mut self, header: Option<&str>) -> Result<Self, ConfigError> {
        self.user_id_header = header
            .map(|h| {
                HeaderName::try_from(h).map_err(|_| {
                    ConfigError::new("userIdHeader", format!("{h:?} is not a header name"))
                })
            })
            .transpose()?;
        Ok(self)
    }

    fn snapshot(&self) -> Arc<Configs> {
        Arc::clone(&self.configs.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn update(&self, change: impl FnOnce(&mut Configs)) {
        let mut guard = self.configs.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Configs::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }

    /// Builds every config, then serves exactly these (all or nothing: on an error, naming
    /// the config's `authConfigRefName`, nothing changes).
    pub fn apply(
        &self,
        configs: &[ExtAuthConfig],
        options: &BuildOptions,
    ) -> Result<(), ConfigError> {
        let mut built = Configs::new();
        for config in configs {
            let auth = AuthConfig::from_config_with(config, options).map_err(|e| {
                let path = if e.path().is_empty() {
                    config.auth_config_ref_name.clone()
                } else {
                    format!("{}: {}", config.auth_config_ref_name, e.path())
                };
                ConfigError::new(path, e.message())
            })?;
            built.insert(config.auth_config_ref_name.clone(), Arc::new(auth));
        }
        *self.configs.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(built);
        Ok(())
    }

    /// Serves `config` under its id, replacing the one of that id.
    pub fn insert(&self, config: AuthConfig) {
        let config = Arc::new(config);
        self.update(|configs| {
            configs.insert(config.id().to_owned(), config);
        });
    }

    /// Stops serving config `id`.
    pub fn remove(&self, id: &str) {
        self.update(|configs| {
            configs.remove(id);
        });
    }

    /// The config served under `id`.
    pub fn get(&self, id: &str) -> Option<Arc<AuthConfig>> {
        self.snapshot().get(id).cloned()
    }

    /// The tonic server to add to a `tonic::transport::Server`.
    pub fn into_server(self) -> AuthorizationServer<Self> {
        AuthorizationServer::new(self)
    }

    /// Answers one `Check` (what the gRPC method does, without gRPC).
    pub async fn check(&self, request: PbCheckRequest) -> CheckResponse {
        let attributes = request.attributes.unwrap_or_default();
        let config = attributes
            .context_extensions
            .get(CONFIG_ID_KEY)
            .and_then(|id| self.get(id));
        let Some(config) = config else {
            return denied(Denied::status(StatusCode::FORBIDDEN));
        };
        let peer = attributes.source.as_ref().and_then(peer_address);
        let http = attributes.request.and_then(|r| r.http).unwrap_or_default();
        let request = check_request(http, peer);
        match config.check(&request).await {
            Decision::Allow(allowed) => {
                let mut headers: Vec<HeaderValueOption> =
                    upstream_values(&allowed.upstream_headers)
                        .iter()
                        .map(|(name, value)| {
                            option(name, value, HeaderAppendAction::OverwriteIfExistsOrAdd)
                        })
                        .collect();
                // Envoy removes before it sets, as the layer does.
                let mut headers_to_remove: Vec<String> = allowed
                    .remove_upstream_headers
                    .iter()
                    .map(|name| name.as_str().to_owned())
                    .collect();
                if let Some(name) = &self.user_id_header {
                    match allowed
                        .user_id
                        .as_deref()
                        .and_then(|id| HeaderValue::try_from(id).ok())
                    {
                        Some(value) => headers.push(option(
                            name,
                            &value,
                            HeaderAppendAction::OverwriteIfExistsOrAdd,
                        )),
                        None => headers_to_remove.push(name.as_str().to_owned()),
                    }
                }
                CheckResponse {
                    status: Some(RpcStatus {
                        code: GRPC_OK,
                        ..Default::default()
                    }),
                    http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
                        headers,
                        headers_to_remove,
                        response_headers_to_add: header_options(&allowed.response_headers),
                        ..Default::default()
                    })),
                    ..Default::default()
                }
            }
            Decision::Deny(d) => denied(d),
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthzService {
    async fn check(
        &self,
        request: Request<PbCheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        Ok(Response::new(
            ExtAuthzService::check(self, request.into_inner()).await,
        ))
    }
}

fn denied(denied: Denied) -> CheckResponse {
    let code = if denied.status == StatusCode::UNAUTHORIZED {
        GRPC_UNAUTHENTICATED
    } else {
        GRPC_PERMISSION_DENIED
    };
    CheckResponse {
        status: Some(RpcStatus {
            code,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(denied.status.as_u16()),
            }),
            headers: header_options(&denied.headers),
            body: String::from_utf8_lossy(&denied.body).into_owned(),
        })),
        ..Default::default()
    }
}

fn option(name: &HeaderName, value: &HeaderValue, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(PbHeaderValue {
            key: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// Headers for the client, as [`response_actions`] says: Envoy sets a header that has one
/// value and adds every value of one that has several.
fn header_options(headers: &HeaderMap) -> Vec<HeaderValueOption> {
    response_actions(headers)
        .into_iter()
        .map(|(name, value, append)| {
            let action = if append {
                HeaderAppendAction::AppendIfExistsOrAdd
            } else {
                HeaderAppendAction::OverwriteIfExistsOrAdd
            };
            option(&name, &value, action)
        })
        .collect()
}

fn peer_address(peer: &attribute_context::Peer) -> Option<SocketAddr> {
    let Some(Address::SocketAddress(socket)) = peer.address.as_ref()?.address.as_ref() else {
        return None;
    };
    let ip: IpAddr = socket.address.parse().ok()?;
    let port = match socket.port_specifier {
        Some(PortSpecifier::PortValue(port)) => u16::try_from(port).ok()?,
        _ => 0,
    };
    Some(SocketAddr::new(ip, port))
}

/// Envoy's `AttributeContext.HttpRequest` as the steps see a request.
fn check_request(http: attribute_context::HttpRequest, peer: Option<SocketAddr>) -> CheckRequest {
    let mut headers = HeaderMap::new();
    let mut add = |key: &str, value: &[u8]| {
        // Pseudo-headers (`:authority`, `:path`, ...) are in `host`, `path`, `method`.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(key), HeaderValue::from_bytes(value)) {
            headers.append(name, value);
        }
    };
    for (key, value) in &http.headers {
        add(key, value.as_bytes());
    }
    if http.headers.is_empty() {
        // Envoy's `encode_raw_headers`: the same headers, as bytes.
        for header in http.header_map.iter().flat_map(|m| m.headers.iter()) {
            let value = if header.raw_value.is_empty() {
                header.value.as_bytes()
            } else {
                &header.raw_value
            };
            add(&header.key, value);
        }
    }
    let body = if http.raw_body.is_empty() {
        Bytes::from(http.body)
    } else {
        Bytes::from(http.raw_body)
    };
    CheckRequest {
        method: Method::from_bytes(http.method.as_bytes()).unwrap_or_default(),
        uri: http.path.parse().unwrap_or_default(),
        headers,
        scheme: http.scheme,
        host: http.host,
        peer,
        body,
    }
}
