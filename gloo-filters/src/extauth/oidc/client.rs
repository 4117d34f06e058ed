//! Calls to the identity provider: the pluggable [`IdpClient`] and the default
//! [`HyperIdpClient`] (https with the `https` feature); plus the requests the flow makes (discovery and JWKS
//! `GET`s, token / revocation / end-session form `POST`s with client authentication).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::error::IdpError;
use crate::http_client::HttpClient;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};

/// The future an [`IdpClient`] returns: the whole answer, or why there is none.
pub type IdpFuture = Pin<Box<dyn Future<Output = Result<Response<Bytes>, IdpError>> + Send>>;

/// Sends the step's requests to the identity provider (discovery, JWKS, token, revocation,
/// end session). Object safe: plug in a client with TLS, a proxy, or a gateway's upstream
/// clusters. The step bounds every call with its own timeout.
///
/// ```
/// use bytes::Bytes;
/// use gloo_filters::extauth::oidc::{IdpClient, IdpError, IdpFuture};
///
/// /// Refuses every call (e.g. in a test that must not reach the network).
/// struct Offline;
///
/// impl IdpClient for Offline {
///     fn send(&self, request: http::Request<Bytes>) -> IdpFuture {
///         let uri = request.uri().clone();
///         Box::pin(async move { Err(IdpError::new(format!("{uri}: offline"))) })
///     }
/// }
/// ```
pub trait IdpClient: Send + Sync + 'static {
    /// Sends `request` and reads the whole answer.
    fn send(&self, request: Request<Bytes>) -> IdpFuture;
}

impl<C: IdpClient + ?Sized> IdpClient for Arc<C> {
    fn send(&self, request: Request<Bytes>) -> IdpFuture {
        (**self).send(request)
    }
}

/// The largest answer read from the identity provider (1 MiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The default client: gloo-filters' pooled HTTP client (hyper-util; `https` over rustls
/// trusting the system's CA certificates with the `https` feature, refused without it).
#[derive(Clone)]
pub struct HyperIdpClient {
    client: Result<HttpClient, String>,
}

impl HyperIdpClient {
    /// A client with its own connection pool. Needs a tokio runtime when it sends. Should
    /// TLS fail to set up, every call answers that error.
    pub fn new() -> Self {
        Self {
            client: HttpClient::new(),
        }
    }
}

impl Default for HyperIdpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperIdpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperIdpClient").finish_non_exhaustive()
    }
}

impl IdpClient for HyperIdpClient {
    fn send(&self, request: Request<Bytes>) -> IdpFuture {
        let client = self.client.clone();
        Box::pin(async move {
            client
                .map_err(IdpError::new)?
                .send(request, MAX_ANSWER_BYTES)
                .await
                .map_err(IdpError::new)
        })
    }
}

/// How the client authenticates at the token and revocation endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// `client_secret_basic` (RFC 6749 §2.3.1: id and secret form-encoded, then Basic).
    Basic,
    /// `client_secret_post`: both in the form body.
    Post,
    /// A public client: only `client_id` in the body.
    None,
}

/// The step's view of the identity provider: a client, a timeout and the client credentials.
#[derive(Clone)]
pub(crate) struct Idp {
    pub(crate) client: Arc<dyn IdpClient>,
    pub(crate) timeout: Duration,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl Idp {
    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, IdpError> {
        let uri = request.uri().clone();
        match tokio::time::timeout(self.timeout, self.client.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(IdpError::new(format!(
                "{uri}: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    /// `GET uri`, expecting `200` and JSON.
    pub(crate) async fn get_json(&self, uri: &Uri) -> Result<Bytes, IdpError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri.clone())
            .header(ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(IdpError::new)?;
        let response = self.send(request).await?;
        if response.status() != StatusCode::OK {
            return Err(IdpError::new(format!(
                "{uri} answered {}",
                response.status()
            )));
        }
        Ok(response.into_body())
    }

    /// `POST uri` with a form body of `params` plus the client's authentication, and extra
    /// `headers`; the answer whatever its status.
    pub(crate) async fn post_form(
        &self,
        uri: &Uri,
        auth: &ClientAuth,
        params: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Response<Bytes>, IdpError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(uri.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json");
        // The serializer is not `Send`: it lives in this block only, never across an await.
        let body = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(params);
            match auth {
                ClientAuth::Basic => {
                    let encode =
                        |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                    let credentials = format!(
                        "{}:{}",
                        encode(&self.client_id),
                        encode(&self.client_secret)
                    );
                    builder = builder.header(
                        AUTHORIZATION,
                        format!("Basic {}", STANDARD.encode(credentials)),
                    );
                }
                ClientAuth::Post => {
                    form.append_pair("client_id", &self.client_id);
                    form.append_pair("client_secret", &self.client_secret);
                }
                ClientAuth::None => {
                    form.append_pair("client_id", &self.client_id);
                }
            }
            form.finish()
        };
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Bytes::from(body)).map_err(IdpError::new)?;
        self.send(request).await
    }
}

/// `base` with `params` appended to its query (after any it already has).
pub(crate) fn with_query<'a>(
    base: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    let query = query.finish();
    if query.is_empty() {
        return base.to_owned();
    }
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    format!("{base}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_appended_and_encoded() {
        assert_eq!(
            with_query("http://idp/auth", [("scope", "openid email"), ("x", "a&b")]),
            "http://idp/auth?scope=openid+email&x=a%26b"
        );
        assert_eq!(
            with_query("http://idp/auth?tenant=1", [("a", "b")]),
            "http://idp/auth?tenant=1&a=b"
        );
        assert_eq!(
            with_query("http://idp/auth?", [("a", "b")]),
            "http://idp/auth?a=b"
        );
        assert_eq!(with_query("http://idp/auth", []), "http://idp/auth");
    }
}
