//! The one HTTP client behind the calls filters make themselves: JWKS fetches (`jwt`), token
//! introspection and userinfo (`extauth`), the OIDC step's identity provider calls
//! (`extauth-oidc`) and AWS (`aws`).
//!
//! hyper-util's pooled HTTP/1.1 client. With the `https` feature (which `aws` enables), `https`
//! URIs are reached over rustls (ring) trusting the system's CA certificates, read once per
//! process (`SSL_CERT_FILE` / `SSL_CERT_DIR` override them, as OpenSSL's do); without it, they
//! are refused with an error that names the feature. Answers are read whole, up to a limit
//! the caller gives.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[cfg(feature = "https")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "https"))]
type Connector = HttpConnector;

/// A pooled client; clones share the pool.
#[derive(Clone)]
pub(crate) struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl HttpClient {
    /// A client with its own connection pool (connect timeout 5 s, idle connections kept
    /// 60 s). Needs a tokio runtime when it sends. Fails only when rustls cannot be set up.
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Self::with_connector(connector(Self::http())?))
    }

    /// Like [`HttpClient::new`], `https` calls using `tls`.
    #[cfg(feature = "https")]
    pub(crate) fn with_tls(tls: rustls::ClientConfig) -> Result<Self, String> {
        Ok(Self::with_connector(tls_connector(Self::http(), tls)))
    }

    fn http() -> HttpConnector {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        http.set_nodelay(true);
        http
    }

    fn with_connector(connector: Connector) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
        }
    }

    /// Sends `request` (an absolute `http` or `https` URI) and reads the whole answer, at most
    /// `max_answer` bytes. Errors name the URI and carry the whole error chain (hyper's
    /// "client error (Connect)" alone says little).
    pub(crate) async fn send(
        &self,
        request: Request<Bytes>,
        max_answer: usize,
    ) -> Result<Response<Bytes>, String> {
        let uri = request.uri().clone();
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") if cfg!(feature = "https") => {}
            Some("https") => {
                return Err(format!(
                    "{uri}: https needs gloo-filters' `https` feature (this build speaks plain http only)"
                ))
            }
            _ => return Err(format!("{uri}: not an http or https URL")),
        }
        let response = self
            .client
            .request(request.map(Full::new))
            .await
            .map_err(|e| format!("{uri}: {}", error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, max_answer)
            .collect()
            .await
            .map_err(|e| format!("{uri}: reading the answer: {e}"))?
            .to_bytes();
        Ok(Response::from_parts(parts, body))
    }
}

#[cfg(feature = "https")]
fn connector(http: HttpConnector) -> Result<Connector, String> {
    Ok(tls_connector(http, tls_config()?))
}

#[cfg(feature = "https")]
fn tls_connector(http: HttpConnector, tls: rustls::ClientConfig) -> Connector {
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

#[cfg(not(feature = "https"))]
fn connector(http: HttpConnector) -> Result<Connector, String> {
    Ok(http)
}

/// The client TLS configuration every client shares: the system's CA certificates.
#[cfg(feature = "https")]
fn tls_config() -> Result<rustls::ClientConfig, String> {
    crate::tls::client_config(crate::tls::system_roots(), None, None)
}

/// An error and its sources, joined.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    std::iter::successors(Some(err), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
