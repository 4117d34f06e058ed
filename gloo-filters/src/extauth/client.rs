//! The HTTP client auth steps call identity providers with (token introspection, userinfo).

use std::fmt;
use std::sync::Arc;

use super::BoxFuture;
use crate::http_client::HttpClient;
use bytes::Bytes;
use http::{Request, Response};

/// Why a call to an identity provider got no answer.
#[derive(Debug, Clone)]
pub struct HttpCallError(String);

impl HttpCallError {
    /// An error with this description.
    pub fn new(message: impl fmt::Display) -> Self {
        Self(message.to_string())
    }
}

impl fmt::Display for HttpCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpCallError {}

/// Sends the requests of auth steps (introspection, userinfo) and returns whole answers.
/// Object safe, so a gateway can route these calls through its own clusters or a TLS client.
///
/// ```
/// use bytes::Bytes;
/// use gloo_filters::extauth::{AuthHttpClient, BoxFuture, HttpCallError};
///
/// /// Answers every call `{"active": false}`.
/// struct Inactive;
///
/// impl AuthHttpClient for Inactive {
///     fn send(&self, _request: http::Request<Bytes>) -> BoxFuture<'static, Result<http::Response<Bytes>, HttpCallError>> {
///         Box::pin(async { Ok(http::Response::new(Bytes::from_static(br#"{"active":false}"#))) })
///     }
/// }
/// ```
pub trait AuthHttpClient: Send + Sync + 'static {
    /// Sends `request`; the answer's body is read whole.
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'static, Result<Response<Bytes>, HttpCallError>>;
}

impl<C: AuthHttpClient + ?Sized> AuthHttpClient for Arc<C> {
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'static, Result<Response<Bytes>, HttpCallError>> {
        (**self).send(request)
    }
}

/// The largest answer read from an identity provider (1 MiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The default client: gloo-filters' pooled HTTP client (hyper-util; `https` over rustls
/// trusting the system's CA certificates with the `https` feature, refused without it).
/// Answers over 1 MiB are errors.
#[derive(Clone)]
pub struct HyperAuthClient {
    client: Result<HttpClient, String>,
}

impl HyperAuthClient {
    /// A client with its own connection pool. Needs a tokio runtime when it sends. Should
    /// TLS fail to set up, every call answers that error.
    pub fn new() -> Self {
        Self {
            client: HttpClient::new(),
        }
    }

    /// A client with its own connection pool whose `https` calls use `tls` (its CA
    /// certificates, client certificate, protocol versions).
    #[cfg(feature = "https")]
    pub(crate) fn with_tls(tls: rustls::ClientConfig) -> Self {
        Self {
            client: HttpClient::with_tls(tls),
        }
    }
}

impl Default for HyperAuthClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperAuthClient").finish_non_exhaustive()
    }
}

impl AuthHttpClient for HyperAuthClient {
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> BoxFuture<'static, Result<Response<Bytes>, HttpCallError>> {
        let client = self.client.clone();
        Box::pin(async move {
            client
                .map_err(HttpCallError::new)?
                .send(request, MAX_ANSWER_BYTES)
                .await
                .map_err(HttpCallError::new)
        })
    }
}
