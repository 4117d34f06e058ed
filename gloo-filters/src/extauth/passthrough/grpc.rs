//! gRPC passthrough: another `envoy.service.auth.v3.Authorization` server decides.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::google::protobuf::Struct;
use http::{HeaderMap, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;

use super::super::config::{PassThroughAuth, RetryPolicy};
use super::super::envoy_check::envoy_check_request;
use super::super::error::ConfigError;
use super::super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use super::tls::TlsData;
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
    tls: Option<Arc<rustls::ClientConfig>>,
    channel: OnceLock<Channel>,
    timeout: Duration,
    retry: Option<Retry>,
    config: Option<Struct>,
    failure_mode_allow: bool,
}

impl fmt::Debug for PassThroughGrpc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassThroughGrpc")
            .field("address", &self.endpoint.uri())
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("failure_mode_allow", &self.failure_mode_allow)
            .finish_non_exhaustive()
    }
}

impl PassThroughGrpc {
    /// Builds `passThroughAuth` (at `at`, for errors) whose `grpc` is set.
    pub fn from_config(at: &str, config: &PassThroughAuth) -> Result<Self, ConfigError> {
        Self::build(at, config, None)
    }

    /// Builds `passThroughAuth` whose `grpc` is set, with `passthroughInternal`'s TLS
    /// material (`data`) when the control plane resolved its Secret.
    pub(crate) fn build(
        at: &str,
        config: &PassThroughAuth,
        data: Option<TlsData<'_>>,
    ) -> Result<Self, ConfigError> {
        let Some(grpc) = &config.grpc else {
            return Err(ConfigError::new(format!("{at}.grpc"), "required"));
        };
        let at = format!("{at}.grpc");
        if grpc.address.is_empty() {
            return Err(ConfigError::new(format!("{at}.address"), "required"));
        }
        let timeout = timeout(&at, "connectionTimeout", grpc.connection_timeout)?;
        // gRPC needs HTTP/2, which TLS servers (gRPC-Go's among them) expect ALPN to name.
        let tls = super::tls::client_config(&at, grpc.tls_config.as_ref(), data, &[b"h2"])?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{}", grpc.address))
            .map_err(|e| {
                ConfigError::new(
                    format!("{at}.address"),
                    format!("{:?} is not host:port: {e}", grpc.address),
                )
            })?
            .connect_timeout(timeout)
            .timeout(timeout);
        let retry = grpc
            .retry_policy
            .map(|policy| Retry::from_config(&format!("{at}.retryPolicy"), policy))
            .transpose()?;
        Ok(Self {
            endpoint,
            tls,
            channel: OnceLock::new(),
            timeout,
            retry,
            config: config.config.as_ref().map(pb_struct),
            failure_mode_allow: config.failure_mode_allow,
        })
    }

    /// The channel, connected (lazily) on first use.
    fn channel(&self) -> Channel {
        self.channel
            .get_or_init(|| match &self.tls {
                None => self.endpoint.connect_lazy(),
                Some(tls) => self.endpoint.connect_with_connector_lazy(TlsConnect {
                    tls: tokio_rustls::TlsConnector::from(Arc::clone(tls)),
                }),
            })
            .clone()
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
            let mut client = AuthorizationClient::new(self.channel());
            let check_request = self.check_request(request);
            // `connectionTimeout` bounds the whole check, retries included, as a gRPC
            // deadline does.
            let deadline = Instant::now() + self.timeout;
            let mut retries = 0;
            let answer = loop {
                let call = client.check(check_request.clone());
                let status = match tokio::time::timeout_at(deadline, call).await {
                    Ok(Ok(answer)) => break answer.into_inner(),
                    Ok(Err(status)) => status,
                    Err(_) => {
                        tracing::warn!(address = %self.endpoint.uri(), timeout = ?self.timeout, "passthrough auth server timed out");
                        return failed(self.failure_mode_allow, None);
                    }
                };
                let backoff = self
                    .retry
                    .as_ref()
                    .filter(|r| unavailable(&status) && retries < r.retries)
                    .map(|r| r.backoff(retries));
                let Some(backoff) = backoff else {
                    tracing::warn!(address = %self.endpoint.uri(), %status, retries, "passthrough auth server failed");
                    return failed(self.failure_mode_allow, None);
                };
                tracing::debug!(address = %self.endpoint.uri(), %status, ?backoff, "retrying the passthrough auth server");
                if Instant::now() + backoff >= deadline {
                    tracing::warn!(address = %self.endpoint.uri(), timeout = ?self.timeout, "passthrough auth server timed out");
                    return failed(self.failure_mode_allow, None);
                }
                tokio::time::sleep(backoff).await;
                retries += 1;
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

/// Whether a call failed as gRPC's `UNAVAILABLE`: the server said so, or the call got no
/// answer because the connection failed (tonic reports a connection closed during the
/// handshake as `CANCELLED`, where gRPC-Go, Gloo's client, reports `UNAVAILABLE`).
fn unavailable(status: &tonic::Status) -> bool {
    status.code() == Code::Unavailable
        || std::error::Error::source(status)
            .is_some_and(|source| source.is::<tonic::transport::Error>())
}

/// Gloo's `RetryPolicy`: calls that fail with `UNAVAILABLE` (the server cannot be reached, or
/// says so) are retried `retries` times, after a fully jittered exponential back-off: a random
/// wait up to `base × 2^n` (`n` retries so far), never above `max`, as Envoy's and gRPC's
/// back-offs wait.
#[derive(Debug, Clone, Copy)]
struct Retry {
    retries: u32,
    base: Duration,
    max: Duration,
}

/// Gloo's default `numRetries`.
const DEFAULT_NUM_RETRIES: u32 = 1;
/// Gloo's default `baseInterval`.
const DEFAULT_BASE_INTERVAL: Duration = Duration::from_secs(1);

impl Retry {
    fn from_config(at: &str, policy: RetryPolicy) -> Result<Self, ConfigError> {
        let back_off = policy.retry_back_off.unwrap_or_default();
        let base = back_off
            .base_interval
            .map_or(DEFAULT_BASE_INTERVAL, |d| d.0);
        if base.is_zero() {
            return Err(ConfigError::new(
                format!("{at}.retryBackOff.baseInterval"),
                "must be more than zero",
            ));
        }
        let max = back_off.max_interval.map_or(base * 10, |d| d.0);
        if max < base {
            return Err(ConfigError::new(
                format!("{at}.retryBackOff.maxInterval"),
                "must be at least baseInterval",
            ));
        }
        Ok(Self {
            retries: policy.num_retries.unwrap_or(DEFAULT_NUM_RETRIES),
            base,
            max,
        })
    }

    /// The wait before retry number `done + 1`.
    fn backoff(&self, done: u32) -> Duration {
        let ceiling = self
            .base
            .checked_mul(1 << done.min(31))
            .map_or(self.max, |d| d.min(self.max));
        ceiling.mul_f64(fastrand::f64())
    }
}

/// The connector of a TLS channel: TCP to the URI's host and port, then TLS naming the host.
#[derive(Clone)]
struct TlsConnect {
    tls: tokio_rustls::TlsConnector,
}

type TlsStream = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

impl tower::Service<Uri> for TlsConnect {
    type Response = TlsStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let invalid =
                |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
            let host = uri
                .host()
                .ok_or_else(|| invalid(format!("{uri}: no host")))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.clone())
                .map_err(|e| invalid(format!("{host:?} is not a TLS server name: {e}")))?;
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}
