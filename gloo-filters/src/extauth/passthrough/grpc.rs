//! gRPC passthrough: another `envoy.service.auth.v3.Authorization` server decides.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::google::protobuf::Struct;
use http::{HeaderMap, StatusCode};
use tonic::transport::{Channel, Endpoint};

use super::super::config::PassThroughAuth;
use super::super::envoy_check::envoy_check_request;
use super::super::error::ConfigError;
use super::super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use super::{failed, timeout};
use crate::ext_authz::check::{self, Reply, Verdict};
use crate::pb_json::pb_struct;

/// The filter metadata namespace the step's `config` is sent under, as Gloo sends it.
pub const PASSTHROUGH_CONFIG_NAMESPACE: &str = "solo.auth.passthrough.config";

/// Gloo's gRPC `passThroughAuth`: see the [module docs](super). The connection is made on the
/// first check (so the step can be built outside a tokio runtime) and reused.
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::AuthConfig;
///
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.passthrough",
///     "configs": [{"passThroughAuth": {
///         "grpc": {"address": "auth.example:9001", "connectionTimeout": "3s"},
///         "config": {"team": "blue"}
///     }}]
/// }"#)?)?;
/// assert_eq!(config.id(), "gloo-system.passthrough");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
pub struct PassThroughGrpc {
    endpoint: Endpoint,
    channel: OnceLock<Channel>,
    timeout: Duration,
    config: Option<Struct>,
    failure_mode_allow: bool,
}

impl fmt::Debug for PassThroughGrpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassThroughGrpc")
            .field("address", &self.endpoint.uri())
            .field("timeout", &self.timeout)
            .field("failure_mode_allow", &self.failure_mode_allow)
            .finish_non_exhaustive()
    }
}

impl PassThroughGrpc {
    /// Builds `passThroughAuth` (at `at`, for errors) whose `grpc` is set.
    pub fn from_config(at: &str, config: &PassThroughAuth) -> Result<Self, ConfigError> {
        let Some(grpc) = &config.grpc else {
            return Err(ConfigError::new(format!("{at}.grpc"), "required"));
        };
        let at = format!("{at}.grpc");
        for (field, set) in [
            ("tlsConfig", grpc.tls_config.is_some()),
            ("retryPolicy", grpc.retry_policy.is_some()),
        ] {
            if set {
                return Err(ConfigError::new(
                    format!("{at}.{field}"),
                    "not supported by gloo-filters for gRPC passthrough",
                ));
            }
        }
        if grpc.address.is_empty() {
            return Err(ConfigError::new(format!("{at}.address"), "required"));
        }
        let timeout = timeout(&at, "connectionTimeout", grpc.connection_timeout)?;
        let endpoint = Endpoint::from_shared(format!("http://{}", grpc.address))
            .map_err(|e| {
                ConfigError::new(
                    format!("{at}.address"),
                    format!("{:?} is not host:port: {e}", grpc.address),
                )
            })?
            .connect_timeout(timeout)
            .timeout(timeout);
        Ok(Self {
            endpoint,
            channel: OnceLock::new(),
            timeout,
            config: config.config.as_ref().map(pb_struct),
            failure_mode_allow: config.failure_mode_allow,
        })
    }

    fn check_request(
        &self,
        request: &CheckRequest,
    ) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
        let metadata = self.config.as_ref().map(|config| Metadata {
            filter_metadata: HashMap::from([(
                PASSTHROUGH_CONFIG_NAMESPACE.to_string(),
                config.clone(),
            )]),
            ..Default::default()
        });
        envoy_check_request(request, metadata)
    }
}

/// A denial as the client gets it.
fn denial(reply: Reply) -> Denied {
    let mut headers = HeaderMap::new();
    check::apply(&mut headers, &reply.headers);
    Denied {
        status: reply.status.unwrap_or(StatusCode::FORBIDDEN),
        headers,
        body: reply.body.into(),
    }
}

impl Authorize for PassThroughGrpc {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let channel = self
                .channel
                .get_or_init(|| self.endpoint.connect_lazy())
                .clone();
            let mut client = AuthorizationClient::new(channel);
            let call = client.check(self.check_request(request));
            let answer = match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok(answer)) => answer.into_inner(),
                Ok(Err(status)) => {
                    tracing::warn!(address = %self.endpoint.uri(), %status, "passthrough auth server failed");
                    return failed(self.failure_mode_allow, None);
                }
                Err(_) => {
                    tracing::warn!(address = %self.endpoint.uri(), timeout = ?self.timeout, "passthrough auth server timed out");
                    return failed(self.failure_mode_allow, None);
                }
            };
            match check::verdict(answer) {
                Verdict::Allow(allow) => {
                    // The upstream request as Envoy would change it; the step sets each
                    // changed header's resulting values.
                    let mut after = request.headers.clone();
                    check::apply(&mut after, &allow.request_headers);
                    let mut allowed = Allowed::default();
                    for mutation in &allow.request_headers {
                        if allowed.upstream_headers.contains_key(&mutation.name) {
                            continue;
                        }
                        for value in after.get_all(&mutation.name) {
                            allowed
                                .upstream_headers
                                .append(mutation.name.clone(), value.clone());
                        }
                    }
                    // Envoy removes `headers_to_remove` after setting headers.
                    for name in &allow.remove {
                        allowed.upstream_headers.remove(name);
                    }
                    allowed.remove_upstream_headers = allow.remove;
                    check::apply(&mut allowed.response_headers, &allow.response_headers);
                    Decision::Allow(allowed)
                }
                Verdict::Deny(reply) => Decision::Deny(denial(reply)),
                Verdict::Error(reply) => failed(self.failure_mode_allow, Some(denial(reply))),
            }
        })
    }
}
