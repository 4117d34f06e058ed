//! Sending requests to AWS: a pluggable [`HttpTransport`] (hyper-util with rustls by default),
//! service [`Endpoints`], SigV4-signed calls, the query protocol (form `POST`, XML answers)
//! and AWS's error documents.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};

use super::credentials::{CredentialsError, ProvideCredentials};
use super::env::Env;
use super::sigv4::{self, SigningSettings};
use super::xml::Element;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest answer read from AWS (64 MiB: a large `DescribeInstances` page, never an
/// unbounded one).
const MAX_ANSWER: usize = 64 << 20;

/// Sends one HTTP request and reads the whole answer. Object safe, so a gateway can send AWS
/// calls through its own upstream clusters (gloo-proxy sends envoy-gloo's STS calls through
/// the cluster its config names).
pub trait HttpTransport: Send + Sync + fmt::Debug + 'static {
    /// Sends `request` (an absolute URI) and returns the answer, or why there is none.
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, String>>;
}

/// The default transport: hyper-util's pooled HTTP/1.1 client, TLS by rustls (ring) trusting
/// the system's CA certificates, a timeout per request (gloo-filters' one HTTP client, as the
/// JWKS and identity provider calls use).
#[derive(Clone)]
pub struct HyperTransport {
    client: crate::http_client::HttpClient,
    timeout: Duration,
}

impl fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperTransport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// A transport with a 10 s timeout per request. The system's CA certificates are read
    /// once; without any, `https` calls fail with a certificate error (plain `http` endpoints,
    /// such as instance metadata or a local mock, still work).
    pub fn new() -> Result<Self, AwsError> {
        Ok(HyperTransport {
            client: crate::http_client::HttpClient::new().map_err(AwsError::config)?,
            timeout: Duration::from_secs(10),
        })
    }

    /// The timeout of each request (connecting, sending and reading the answer).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl HttpTransport for HyperTransport {
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, String>> {
        Box::pin(async move {
            let method = request.method().clone();
            let uri = request.uri().clone();
            // The client's errors start with the URI.
            tokio::time::timeout(self.timeout, self.client.send(request, MAX_ANSWER))
                .await
                .map_err(|_| format!("{method} {uri}: no answer within {:?}", self.timeout))?
                .map_err(|e| format!("{method} {e}"))
        })
    }
}

/// Where each service's API is: `https://<service>.<region>.amazonaws.com` (`.com.cn` in the
/// China regions; `https://sts.amazonaws.com` for STS without a region), unless overridden
/// for all services or one, as the AWS SDKs' `AWS_ENDPOINT_URL` and
/// `AWS_ENDPOINT_URL_<SERVICE>` variables do (for a local mock, a VPC endpoint, a FIPS
/// endpoint).
///
/// ```
/// use gloo_filters::aws::{Endpoints, Env};
/// let endpoints = Endpoints::from_env(&Env::from_vars([("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:5000")]));
/// assert_eq!(endpoints.resolve("ec2", "us-east-1").unwrap(), "http://127.0.0.1:5000/");
/// assert_eq!(endpoints.resolve("lambda", "eu-west-1").unwrap(), "https://lambda.eu-west-1.amazonaws.com/");
/// assert_eq!(endpoints.resolve("sts", "").unwrap(), "https://sts.amazonaws.com/");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    all: Option<Uri>,
    services: BTreeMap<String, Uri>,
}

impl Endpoints {
    /// AWS's public endpoints.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the overrides `env` sets (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EC2`,
    /// `AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL_STS`); unparsable values are logged and
    /// ignored.
    pub fn from_env(env: &Env) -> Self {
        let parse = |name: &str| {
            env.get(name).and_then(|url| match url.parse::<Uri>() {
                Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => Some(uri),
                _ => {
                    tracing::warn!(variable = name, url, "not an absolute URL; ignored");
                    None
                }
            })
        };
        let mut endpoints = Endpoints {
            all: parse("AWS_ENDPOINT_URL"),
            services: BTreeMap::new(),
        };
        for service in ["ec2", "lambda", "sts"] {
            if let Some(uri) = parse(&format!(
                "AWS_ENDPOINT_URL_{}",
                service.to_ascii_uppercase()
            )) {
                endpoints.services.insert(service.to_string(), uri);
            }
        }
        endpoints
    }

    /// Sends every service to `url`.
    pub fn all(mut self, url: Uri) -> Self {
        self.all = Some(url);
        self
    }

    /// Sends `service` (`ec2`, `lambda`, `sts`) to `url`.
    pub fn service(mut self, service: impl Into<String>, url: Uri) -> Self {
        self.services.insert(service.into(), url);
        self
    }

    /// The base URL of `service` in `region`.
    pub fn resolve(&self, service: &str, region: &str) -> Result<Uri, AwsError> {
        if let Some(uri) = self.services.get(service).or(self.all.as_ref()) {
            return Ok(uri.clone());
        }
        let url = if region.is_empty() {
            if service == "sts" {
                "https://sts.amazonaws.com/".to_string()
            } else {
                return Err(AwsError::config(format!(
                    "{service}: no region: set the upstream's region or AWS_REGION"
                )));
            }
        } else if region.starts_with("cn-") {
            format!("https://{service}.{region}.amazonaws.com.cn/")
        } else {
            format!("https://{service}.{region}.amazonaws.com/")
        };
        url.parse()
            .map_err(|e| AwsError::config(format!("{service} endpoint for region {region:?}: {e}")))
    }
}

/// What kind of failure an [`AwsError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AwsErrorKind {
    /// A configuration problem (no region, a bad endpoint).
    Config,
    /// No credentials could be had.
    Credentials,
    /// The request never got an answer (connection refused, timeout).
    Transport,
    /// AWS answered with an error.
    Service,
    /// AWS answered something that is not what the API sends.
    Answer,
}

/// A failed AWS call. The message names the service, the action or URL, and what AWS said.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct AwsError {
    kind: AwsErrorKind,
    status: Option<StatusCode>,
    code: Option<String>,
    message: String,
}

/// The error codes AWS services use for throttling.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

impl AwsError {
    /// An error of `kind` saying `message` (for callers of AWS APIs this client has no call
    /// for, such as an answer they cannot read).
    pub fn new(kind: AwsErrorKind, message: impl Into<String>) -> Self {
        AwsError {
            kind,
            status: None,
            code: None,
            message: message.into(),
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(AwsErrorKind::Config, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> AwsErrorKind {
        self.kind
    }

    /// The HTTP status AWS answered with, if it answered.
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// AWS's error code (`RequestLimitExceeded`, `AuthFailure`, `ResourceNotFoundException`).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// Whether AWS throttled the call (a throttling error code, or `429`): retry later, with
    /// backoff.
    pub fn is_throttling(&self) -> bool {
        self.status == Some(StatusCode::TOO_MANY_REQUESTS)
            || self
                .code
                .as_deref()
                .is_some_and(|c| THROTTLING_CODES.contains(&c))
    }

    /// Whether the failure is worth retrying as is: throttling, a 5xx, or no answer.
    pub fn is_retryable(&self) -> bool {
        self.is_throttling()
            || self.kind == AwsErrorKind::Transport
            || self.status.is_some_and(|s| s.is_server_error())
    }
}

impl From<CredentialsError> for AwsError {
    fn from(err: CredentialsError) -> Self {
        AwsError::new(AwsErrorKind::Credentials, format!("AWS credentials: {err}"))
    }
}

/// Calls AWS APIs: resolves the endpoint, signs with SigV4, sends through the transport, and
/// turns AWS's error documents into [`AwsError`]s. Cheap to clone.
///
/// ```no_run
/// use gloo_filters::aws::{AwsClient, Credentials};
/// # #[tokio::main] async fn main() -> Result<(), gloo_filters::aws::AwsError> {
/// let client = AwsClient::new()?;
/// let answer = client
///     .query("ec2", "us-east-1", "2016-11-15", "DescribeRegions", &[], Some(&Credentials::new("AKID", "secret")))
///     .await?;
/// println!("{}", answer.name); // DescribeRegionsResponse
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AwsClient {
    transport: Arc<dyn HttpTransport>,
    endpoints: Endpoints,
}

impl AwsClient {
    /// A client with the default transport and the endpoint overrides of the process's
    /// environment.
    pub fn new() -> Result<Self, AwsError> {
        Ok(AwsClient {
            transport: Arc::new(HyperTransport::new()?),
            endpoints: Endpoints::from_env(&Env::from_process()),
        })
    }

    /// A client sending through `transport` to AWS's public endpoints.
    pub fn with_transport(transport: Arc<dyn HttpTransport>) -> Self {
        AwsClient {
            transport,
            endpoints: Endpoints::new(),
        }
    }

    /// Uses these endpoints.
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// The endpoints in use.
    pub fn endpoint_config(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn HttpTransport> {
        &self.transport
    }

    /// Sends `request` (its URI: a path and query, relative to the service's endpoint) to
    /// `service` in `region`, signed with `credentials` (unsigned if `None`). Any answer is
    /// returned, error statuses included.
    pub async fn send(
        &self,
        service: &str,
        region: &str,
        request: Request<Bytes>,
        credentials: Option<&dyn ProvideCredentials>,
    ) -> Result<Response<Bytes>, AwsError> {
        let base = self.endpoints.resolve(service, region)?;
        let (mut parts, body) = request.into_parts();
        parts.uri = join(&base, &parts.uri)?;
        let mut request = Request::from_parts(parts, body);
        if let Some(provider) = credentials {
            let credentials = provider.credentials().await?;
            // A global STS endpoint signs for us-east-1.
            let signing_region = if region.is_empty() {
                "us-east-1"
            } else {
                region
            };
            let body = request.body().clone();
            sigv4::sign(
                &mut request,
                &body,
                &credentials,
                &SigningSettings::new(signing_region, service),
                SystemTime::now(),
            )
            .map_err(|e| AwsError::config(format!("{service}: {e}")))?;
        }
        let target = format!("{service} {} {}", request.method(), request.uri());
        self.transport
            .send(request)
            .await
            .map_err(|e| AwsError::new(AwsErrorKind::Transport, format!("{target}: {e}")))
    }

    /// Calls a query-protocol action (EC2, STS): a form `POST` of `Action`, `Version` and
    /// `params`, signed with `credentials` (unsigned without: STS
    /// `AssumeRoleWithWebIdentity`), and its XML answer's root element. An error answer
    /// becomes an [`AwsError`] with AWS's code and message.
    pub async fn query(
        &self,
        service: &str,
        region: &str,
        version: &str,
        action: &str,
        params: &[(String, String)],
        credentials: Option<&dyn ProvideCredentials>,
    ) -> Result<Element, AwsError> {
        let request = query_request(action, version, params)?;
        let response = self.send(service, region, request, credentials).await?;
        xml_answer(&format!("{service} {action}"), response)
    }
}

/// The form `POST /` of a query-protocol action.
pub fn query_request(
    action: &str,
    version: &str,
    params: &[(String, String)],
) -> Result<Request<Bytes>, AwsError> {
    let mut form = format!(
        "Action={}&Version={}",
        sigv4::encode(action, true),
        sigv4::encode(version, true)
    );
    for (name, value) in params {
        form.push('&');
        form.push_str(&sigv4::encode(name, true));
        form.push('=');
        form.push_str(&sigv4::encode(value, true));
    }
    Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        )
        .body(Bytes::from(form))
        .map_err(|e| AwsError::config(format!("{action}: {e}")))
}

/// The XML root of a query-protocol answer, or the [`AwsError`] its error document describes.
pub fn xml_answer(what: &str, response: Response<Bytes>) -> Result<Element, AwsError> {
    let status = response.status();
    let text = String::from_utf8_lossy(response.body());
    if !status.is_success() {
        return Err(service_error(what, status, response.headers(), &text));
    }
    Element::parse(&text).map_err(|e| {
        AwsError::new(
            AwsErrorKind::Answer,
            format!("{what}: the answer is not the API's XML: {e}"),
        )
    })
}

/// The [`AwsError`] of an error answer: its code and message from the XML error document of
/// the query APIs (`<Response><Errors><Error>` for EC2, `<ErrorResponse><Error>` for STS),
/// from the JSON of the REST APIs (`x-amzn-errortype`, `__type`, `Type`, `message`), or the
/// status alone.
pub fn service_error(
    what: &str,
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &str,
) -> AwsError {
    let mut code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_string());
    let mut message = None;
    if let Ok(doc) = Element::parse(body) {
        if let Some(error) = doc.find("Error") {
            code = code.or_else(|| error.child_text("Code").map(str::to_string));
            message = error.child_text("Message").map(str::to_string);
        }
    } else if let Ok(serde_json::Value::Object(json)) = serde_json::from_str(body) {
        let text = |key: &str| json.get(key).and_then(|v| v.as_str()).map(str::to_string);
        code =
            code.or_else(|| text("__type").map(|t| t.rsplit('#').next().unwrap_or(&t).to_string()));
        message = text("message").or_else(|| text("Message"));
    }
    let detail = match (&code, &message) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.clone(),
        (None, Some(message)) => message.clone(),
        (None, None) => body.trim().chars().take(200).collect(),
    };
    AwsError {
        kind: AwsErrorKind::Service,
        status: Some(status),
        code,
        message: format!(
            "{what}: AWS answered {status}{}{detail}",
            if detail.is_empty() { "" } else { ": " }
        ),
    }
}

/// `path` (a path and query) under `base` (whose own path is a prefix).
fn join(base: &Uri, path: &Uri) -> Result<Uri, AwsError> {
    let prefix = base.path().trim_end_matches('/');
    let tail = path.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut parts = http::uri::Parts::default();
    parts.scheme = base.scheme().cloned();
    parts.authority = base.authority().cloned();
    parts.path_and_query = Some(
        format!("{prefix}{tail}")
            .parse()
            .map_err(|e| AwsError::config(format!("{base}{tail}: {e}")))?,
    );
    Uri::from_parts(parts).map_err(|e| AwsError::config(format!("{base}{tail}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_of_both_protocols_give_code_and_message() {
        let mut lambda_headers = http::HeaderMap::new();
        lambda_headers.insert(
            "x-amzn-errortype",
            HeaderValue::from_static("TooManyRequestsException:http://internal.amazon.com/"),
        );
        // (status, headers, body, code, throttling, retryable, in the message)
        let cases = [
            (503, http::HeaderMap::new(), "<?xml version=\"1.0\"?><Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>x</RequestID></Response>", Some("RequestLimitExceeded"), true, true, "Request limit exceeded."),
            (403, http::HeaderMap::new(), "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error></ErrorResponse>", Some("AccessDenied"), false, false, "AccessDenied: no"),
            (429, lambda_headers, "{\"Type\":\"User\",\"message\":\"Rate exceeded\"}", Some("TooManyRequestsException"), true, true, "Rate exceeded"),
            (502, http::HeaderMap::new(), "", None, false, true, "x: AWS answered 502 Bad Gateway"),
        ];
        for (status, headers, body, code, throttling, retryable, text) in cases {
            let err = service_error("x", StatusCode::from_u16(status).unwrap(), &headers, body);
            assert_eq!(err.code(), code, "{body}");
            assert_eq!(err.is_throttling(), throttling, "{body}");
            assert_eq!(err.is_retryable(), retryable, "{body}");
            assert!(err.to_string().contains(text), "{err}");
        }
    }

    #[test]
    fn paths_join_under_the_endpoint() {
        let base: Uri = "http://127.0.0.1:5000/prefix/".parse().unwrap();
        let joined = join(&base, &"/2015-03-31/functions?Marker=a".parse().unwrap()).unwrap();
        assert_eq!(
            joined,
            "http://127.0.0.1:5000/prefix/2015-03-31/functions?Marker=a"
        );
    }

    #[test]
    fn query_forms_are_strictly_encoded() {
        let request = query_request(
            "DescribeInstances",
            "2016-11-15",
            &[
                ("Filter.1.Name".into(), "tag:a b".into()),
                ("Filter.1.Value.1".into(), "x/y+z".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            request.body().as_ref(),
            b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aa%20b&Filter.1.Value.1=x%2Fy%2Bz"
        );
    }
}
