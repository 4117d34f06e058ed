//! Fetching remote JWKS: the pluggable [`JwksFetcher`] and the default [`HyperJwksFetcher`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};

use super::error::JwksFetchError;
use crate::http_client::HttpClient;

/// The future a [`JwksFetcher`] returns: the JWKS document, or why there is none.
pub type JwksFuture = Pin<Box<dyn Future<Output = Result<Bytes, JwksFetchError>> + Send>>;

/// One remote JWKS to fetch.
#[derive(Clone, Debug)]
pub struct JwksRequest {
    pub(crate) provider: Arc<str>,
    pub(crate) uri: Uri,
    pub(crate) cluster: Option<Arc<str>>,
}

impl JwksRequest {
    /// The name of the provider whose keys these are.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Where the keys are (Envoy's `http_uri.uri`).
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The upstream cluster to fetch through, if configured (Envoy's `http_uri.cluster`).
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }
}

/// Fetches JWKS documents for remote providers. Object safe: the filter holds an
/// `Arc<dyn JwksFetcher>`, so a gateway can route fetches through its own upstream clusters.
///
/// The filter applies the provider's timeout around the returned future and parses the
/// document; a fetcher only has to return the body of a successful answer.
///
/// ```
/// use bytes::Bytes;
/// use gloo_filters::jwt::{JwksFetcher, JwksFuture, JwksRequest};
///
/// /// Serves one fixed document, whatever is asked.
/// struct Fixed(Bytes);
///
/// impl JwksFetcher for Fixed {
///     fn fetch(&self, _request: &JwksRequest) -> JwksFuture {
///         let body = self.0.clone();
///         Box::pin(async move { Ok(body) })
///     }
/// }
/// ```
pub trait JwksFetcher: Send + Sync + 'static {
    /// Starts fetching `request`'s JWKS.
    fn fetch(&self, request: &JwksRequest) -> JwksFuture;
}

impl<F: JwksFetcher + ?Sized> JwksFetcher for Arc<F> {
    fn fetch(&self, request: &JwksRequest) -> JwksFuture {
        (**self).fetch(request)
    }
}

/// The largest JWKS document accepted (1 MiB), so a hostile endpoint cannot exhaust memory.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// The default fetcher: a `GET` with gloo-filters' pooled HTTP client (hyper-util; `https`
/// over rustls trusting the system's CA certificates with the `https` feature, refused
/// without it); anything but `200 OK` is a failure (as in Envoy's `JwksFetcher`). gloo-proxy
/// fetches through the cluster the config names instead.
#[derive(Clone)]
pub struct HyperJwksFetcher {
    client: Result<HttpClient, String>,
}

impl HyperJwksFetcher {
    /// A fetcher with its own connection pool. Needs a tokio runtime when it fetches. Should
    /// TLS fail to set up, every fetch answers that error.
    pub fn new() -> Self {
        Self {
            client: HttpClient::new(),
        }
    }
}

impl Default for HyperJwksFetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperJwksFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperJwksFetcher").finish_non_exhaustive()
    }
}

impl JwksFetcher for HyperJwksFetcher {
    fn fetch(&self, request: &JwksRequest) -> JwksFuture {
        let client = self.client.clone();
        let uri = request.uri.clone();
        Box::pin(async move {
            let request = Request::builder()
                .method(Method::GET)
                .uri(uri.clone())
                .header(http::header::ACCEPT, "application/json")
                .body(Bytes::new())
                .map_err(JwksFetchError::new)?;
            let response = client
                .map_err(JwksFetchError::new)?
                .send(request, MAX_JWKS_BYTES)
                .await
                .map_err(JwksFetchError::new)?;
            jwks_from_response(&uri, response.map(http_body_util::Full::new)).await
        })
    }
}

/// The JWKS document in an answer to a fetch of `uri`: its body (at most 1 MiB) if the status
/// is `200 OK`, else an error naming the URI and the status, as Envoy's `JwksFetcher` treats
/// it. For [`JwksFetcher`]s that send the request themselves.
pub async fn jwks_from_response<B>(
    uri: &Uri,
    response: http::Response<B>,
) -> Result<Bytes, JwksFetchError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if response.status() != StatusCode::OK {
        return Err(JwksFetchError::new(format!(
            "{uri} answered {}",
            response.status()
        )));
    }
    let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| JwksFetchError::new(format!("{uri}: {e}")))?;
    Ok(body.to_bytes())
}
