//! HTTP passthrough: a `POST` to the auth server's URL decides.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde_json::{Map, Value};

use super::super::client::AuthHttpClient;
use super::super::config::PassThroughAuth;
use super::super::error::ConfigError;
use super::super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use super::{failed, timeout};

/// Gloo's HTTP `passThroughAuth`: see the [module docs](super). Built from the config by
/// [`PassThroughHttp::from_config`].
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::AuthConfig;
///
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.passthrough",
///     "configs": [{"passThroughAuth": {
///         "http": {"url": "http://auth.example:9001/auth",
///                  "request": {"allowedHeaders": ["authorization"]},
///                  "response": {"allowedUpstreamHeaders": ["x-user"]}},
///         "failureModeAllow": true
///     }}]
/// }"#)?)?;
/// assert_eq!(config.id(), "gloo-system.passthrough");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
pub struct PassThroughHttp {
    url: Uri,
    client: Arc<dyn AuthHttpClient>,
    timeout: Duration,
    allowed_headers: Vec<HeaderName>,
    headers_to_add: Vec<(HeaderName, HeaderValue)>,
    pass_body: bool,
    pass_state: bool,
    pass_filter_metadata: bool,
    config: Option<Map<String, Value>>,
    upstream_append: Vec<HeaderName>,
    upstream_overwrite: Vec<HeaderName>,
    client_on_denied: Vec<HeaderName>,
    client_on_success: Vec<HeaderName>,
    read_state: bool,
    failure_mode_allow: bool,
}

impl fmt::Debug for PassThroughHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassThroughHttp")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("failure_mode_allow", &self.failure_mode_allow)
            .finish_non_exhaustive()
    }
}

fn header_names(at: &str, names: &[String]) -> Result<Vec<HeaderName>, ConfigError> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            HeaderName::try_from(name.as_str()).map_err(|_| {
                ConfigError::new(
                    format!("{at}[{i}]"),
                    format!("{name:?} is not a header name"),
                )
            })
        })
        .collect()
}

impl PassThroughHttp {
    /// Builds `passThroughAuth` (at `at`, for errors) whose `http` is set; calls go out
    /// through `client`.
    pub fn from_config(
        at: &str,
        config: &PassThroughAuth,
        client: Arc<dyn AuthHttpClient>,
    ) -> Result<Self, ConfigError> {
        Self::build(at, config, client, None)
    }

    /// Builds `passThroughAuth` whose `http` is set, with `passthroughInternal`'s TLS material
    /// (`data`) when the control plane resolved its Secret. With TLS settings (`tlsConfig`
    /// or `data`), calls go out through a client of the step's own (feature `https`), not
    /// `client`.
    pub(crate) fn build(
        at: &str,
        config: &PassThroughAuth,
        client: Arc<dyn AuthHttpClient>,
        data: Option<super::TlsData<'_>>,
    ) -> Result<Self, ConfigError> {
        let Some(http) = &config.http else {
            return Err(ConfigError::new(format!("{at}.http"), "required"));
        };
        let at_http = format!("{at}.http");
        let url: Uri = http.url.parse().map_err(|e| {
            ConfigError::new(format!("{at_http}.url"), format!("{:?}: {e}", http.url))
        })?;
        if !matches!(url.scheme_str(), Some("http" | "https")) || url.authority().is_none() {
            return Err(ConfigError::new(
                format!("{at_http}.url"),
                format!("{:?} is not an absolute http or https URL", http.url),
            ));
        }
        let https = url.scheme_str() == Some("https");
        let client = step_client(&at_http, http.tls_config.as_ref(), data, https, client)?;
        let mut call_timeout = timeout(&at_http, "connectionTimeout", http.connection_timeout)?;
        if let Some(header_timeout) = http.response_header_timeout.filter(|d| !d.0.is_zero()) {
            call_timeout = call_timeout.min(header_timeout.0);
        }
        let request = http.request.clone().unwrap_or_default();
        let response = http.response.clone().unwrap_or_default();
        let at_req = format!("{at_http}.request");
        let at_res = format!("{at_http}.response");
        let headers_to_add = request
            .headers_to_add
            .iter()
            .map(|(name, value)| {
                let at = format!("{at_req}.headersToAdd[{name:?}]");
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|_| ConfigError::new(&at, "not a header name"))?;
                let value = HeaderValue::try_from(value.as_str())
                    .map_err(|_| ConfigError::new(&at, "not a header value"))?;
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let upstream_append = header_names(
            &format!("{at_res}.allowedUpstreamHeaders"),
            &response.allowed_upstream_headers,
        )?;
        let upstream_overwrite = header_names(
            &format!("{at_res}.allowedUpstreamHeadersToOverwrite"),
            &response.allowed_upstream_headers_to_overwrite,
        )?;
        if let Some(both) = upstream_append
            .iter()
            .find(|h| upstream_overwrite.contains(h))
        {
            return Err(ConfigError::new(
                at_res,
                format!("`{both}` is in both allowedUpstreamHeaders and allowedUpstreamHeadersToOverwrite"),
            ));
        }
        Ok(Self {
            url,
            client,
            timeout: call_timeout,
            allowed_headers: header_names(
                &format!("{at_req}.allowedHeaders"),
                &request.allowed_headers,
            )?,
            headers_to_add,
            pass_body: request.pass_through_body,
            pass_state: request.pass_through_state,
            pass_filter_metadata: request.pass_through_filter_metadata,
            config: config.config.clone(),
            upstream_append,
            upstream_overwrite,
            client_on_denied: header_names(
                &format!("{at_res}.allowedClientHeadersOnDenied"),
                &response.allowed_client_headers_on_denied,
            )?,
            client_on_success: header_names(
                &format!("{at_res}.allowedClientHeadersOnSuccess"),
                &response.allowed_client_headers_on_success,
            )?,
            read_state: response.read_state_from_response,
            failure_mode_allow: config.failure_mode_allow,
        })
    }

    /// The auth request for `request`.
    fn auth_request(&self, request: &CheckRequest) -> Request<Bytes> {
        let mut headers = HeaderMap::new();
        for name in &self.allowed_headers {
            for value in request.headers.get_all(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        for (name, value) in &self.headers_to_add {
            headers.insert(name.clone(), value.clone());
        }
        let mut members = Map::new();
        if self.pass_body {
            members.insert(
                "body".into(),
                Value::String(String::from_utf8_lossy(&request.body).into_owned()),
            );
        }
        if self.pass_state {
            members.insert("state".into(), Value::Object(Map::new()));
        }
        if self.pass_filter_metadata {
            members.insert("filterMetadata".into(), Value::Object(Map::new()));
        }
        if let Some(config) = &self.config {
            members.insert("config".into(), Value::Object(config.clone()));
        }
        let body = if members.is_empty() {
            Bytes::new()
        } else {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::from(Value::Object(members).to_string())
        };
        let mut auth = Request::new(body);
        *auth.method_mut() = Method::POST;
        *auth.uri_mut() = self.url.clone();
        *auth.headers_mut() = headers;
        auth
    }

    fn decide(
        &self,
        request: &CheckRequest,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Decision {
        if status.is_server_error() {
            tracing::warn!(url = %self.url, %status, "passthrough auth server failed");
            return failed(self.failure_mode_allow, None);
        }
        if status != StatusCode::OK {
            let mut denied = Denied::status(if status.is_success() || status.is_informational() {
                StatusCode::FORBIDDEN
            } else {
                status
            });
            copy(&self.client_on_denied, headers, &mut denied.headers);
            return Decision::Deny(denied);
        }
        if self.read_state && !is_state(body) {
            tracing::warn!(url = %self.url, "passthrough auth answer is not {{\"state\": {{...}}}}");
            return Decision::Deny(Denied::status(StatusCode::FORBIDDEN));
        }
        let mut allowed = Allowed::default();
        for name in &self.upstream_append {
            let mut answer = headers.get_all(name).iter().peekable();
            if answer.peek().is_none() {
                continue;
            }
            for value in request.headers.get_all(name).iter().chain(answer) {
                allowed.upstream_headers.append(name.clone(), value.clone());
            }
        }
        copy(
            &self.upstream_overwrite,
            headers,
            &mut allowed.upstream_headers,
        );
        copy(
            &self.client_on_success,
            headers,
            &mut allowed.response_headers,
        );
        Decision::Allow(allowed)
    }
}

/// Whether an answer's body is `{"state": {...}}`.
fn is_state(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("state").map(Value::is_object))
        .unwrap_or(false)
}

/// Copies every value of `names` from `from` to `to`, replacing what `to` had for them.
fn copy(names: &[HeaderName], from: &HeaderMap, to: &mut HeaderMap) {
    for name in names {
        let mut values = from.get_all(name).iter().peekable();
        if values.peek().is_none() {
            continue;
        }
        to.remove(name);
        for value in values {
            to.append(name.clone(), value.clone());
        }
    }
}

impl Authorize for PassThroughHttp {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let call = self.client.send(self.auth_request(request));
            match tokio::time::timeout(self.timeout, call).await {
                Ok(Ok(answer)) => {
                    self.decide(request, answer.status(), answer.headers(), answer.body())
                }
                Ok(Err(error)) => {
                    tracing::warn!(url = %self.url, %error, "passthrough auth server unreachable");
                    failed(self.failure_mode_allow, None)
                }
                Err(_) => {
                    tracing::warn!(url = %self.url, timeout = ?self.timeout, "passthrough auth server timed out");
                    failed(self.failure_mode_allow, None)
                }
            }
        })
    }
}

/// The client of a step: `shared`, or one with the step's TLS settings, or (for an `https`
/// URL without them) with the CA of Gloo's `HTTPS_PASSTHROUGH_CA_CERT` when it is set.
#[cfg(feature = "https")]
fn step_client(
    at: &str,
    tls_config: Option<&super::super::config::PassThroughTlsConfig>,
    data: Option<super::TlsData<'_>>,
    https: bool,
    shared: Arc<dyn AuthHttpClient>,
) -> Result<Arc<dyn AuthHttpClient>, ConfigError> {
    let tls = match super::tls::client_config(at, tls_config, data, &[])? {
        None if https => super::tls::env_ca_config(at)?,
        tls => tls,
    };
    Ok(match tls {
        None => shared,
        Some(tls) => Arc::new(super::super::client::HyperAuthClient::with_tls(
            Arc::unwrap_or_clone(tls),
        )),
    })
}

/// The client of a step: `shared`; TLS settings need the `https` feature.
#[cfg(not(feature = "https"))]
fn step_client(
    at: &str,
    tls_config: Option<&super::super::config::PassThroughTlsConfig>,
    data: Option<super::TlsData<'_>>,
    _https: bool,
    shared: Arc<dyn AuthHttpClient>,
) -> Result<Arc<dyn AuthHttpClient>, ConfigError> {
    if tls_config.is_some() || data.is_some() {
        return Err(ConfigError::new(
            format!("{at}.tlsConfig"),
            "TLS client settings need gloo-filters' `https` feature",
        ));
    }
    Ok(shared)
}
