//! The HTTP client auth steps call identity providers with (token introspection, userinfo).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::BoxFuture;

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

/// The default client: hyper-util's pooled plain-HTTP client (`https` URLs are refused; plug
/// in a client with a TLS connector for those). Answers over 1 MiB are errors.
#[derive(Clone)]
pub struct HyperAuthClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HyperAuthClient {
    /// A client with its own connection pool. Needs a tokio runtime when it sends.
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
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
            let uri = request.uri().clone();
            if uri.scheme_str() != Some("http") {
                return Err(HttpCallError::new(format!(
                    "{uri}: the default client speaks plain http only"
                )));
            }
            let response = client
                .request(request.map(Full::new))
                .await
                .map_err(|e| HttpCallError::new(format!("{uri}: {e}")))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| HttpCallError::new(format!("{uri}: {e}")))?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}
