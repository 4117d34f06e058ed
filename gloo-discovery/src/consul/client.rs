//! A small Consul HTTP API client: the catalog, health and KV reads gloo needs, as blocking
//! queries.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use gloo_core::model::settings::ConsulConfiguration;
use gloo_core::model::upstream::ConsulConsistencyMode;
use http::{header, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// Consul's default blocking wait (the agent's own default when `wait` is not sent).
const DEFAULT_WAIT: Duration = Duration::from_secs(300);
/// Consul caps `wait` at 10 minutes.
const MAX_WAIT: Duration = Duration::from_secs(600);
/// How long to wait for a TCP connection to the agent.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Beyond `wait` plus Consul's jitter (`wait / 16`), how long an answer may take to arrive.
const ANSWER_SLACK: Duration = Duration::from_secs(5);
/// The largest answer read (64 MiB: a big catalog, never an unbounded one).
const MAX_BODY: usize = 64 << 20;

/// Why a Consul request failed. The message names the URL.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ConsulError {
    message: String,
    status: Option<StatusCode>,
}

impl ConsulError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        ConsulError {
            message: message.into(),
            status: None,
        }
    }

    /// The HTTP status Consul answered with, if it answered (403 for ACL refusals).
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }
}

/// How to reach a Consul agent: Gloo's `Settings.consul` (`ConsulConfiguration`).
///
/// ```
/// use std::time::Duration;
/// use gloo_discovery::consul::ConsulConfig;
///
/// let config = ConsulConfig::new("127.0.0.1:8500")
///     .datacenter("dc1")
///     .token("s3cr3t")
///     .wait_time(Duration::from_secs(30));
/// assert_eq!(config.address(), "127.0.0.1:8500");
/// ```
#[derive(Clone)]
pub struct ConsulConfig {
    address: String,
    datacenter: Option<String>,
    token: Option<String>,
    basic_auth: Option<(String, String)>,
    wait: Duration,
    consistency: ConsulConsistencyMode,
}

impl fmt::Debug for ConsulConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token and the password stay out of logs.
        f.debug_struct("ConsulConfig")
            .field("address", &self.address)
            .field("datacenter", &self.datacenter)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("wait", &self.wait)
            .field("consistency", &self.consistency)
            .finish_non_exhaustive()
    }
}

impl ConsulConfig {
    /// An agent at `address` (`host:port` or `http://host:port`), no token, the agent's own
    /// data center, Consul's default 5 minute blocking wait.
    pub fn new(address: impl Into<String>) -> Self {
        ConsulConfig {
            address: address.into(),
            datacenter: None,
            token: None,
            basic_auth: None,
            wait: DEFAULT_WAIT,
            consistency: ConsulConsistencyMode::DefaultMode,
        }
    }

    /// Gloo's `Settings.consul`: `httpAddress` (else the deprecated `address`, else Consul's
    /// default `127.0.0.1:8500`), `datacenter`, `token`, `username` / `password`, `waitTime`.
    /// TLS to the agent (`caFile`, `caPath`, `certFile`, `keyFile`, `insecureSkipVerify`) is
    /// not supported yet and is an error naming the field.
    pub fn from_settings(settings: &ConsulConfiguration) -> Result<Self, ConsulError> {
        for (field, set) in [
            ("caFile", settings.ca_file.is_some()),
            ("caPath", settings.ca_path.is_some()),
            ("certFile", settings.cert_file.is_some()),
            ("keyFile", settings.key_file.is_some()),
            (
                "insecureSkipVerify",
                settings.insecure_skip_verify.is_some(),
            ),
        ] {
            if set {
                return Err(ConsulError::new(format!(
                    "settings.consul.{field}: TLS to the Consul agent is not supported yet; use a plain HTTP address"
                )));
            }
        }
        let address = settings
            .http_address
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(settings.address.as_deref().filter(|a| !a.is_empty()))
            .unwrap_or("127.0.0.1:8500");
        let mut config = ConsulConfig::new(address);
        config.datacenter = settings.datacenter.clone().filter(|d| !d.is_empty());
        config.token = settings.token.clone().filter(|t| !t.is_empty());
        if settings.username.is_some() || settings.password.is_some() {
            config.basic_auth = Some((
                settings.username.clone().unwrap_or_default(),
                settings.password.clone().unwrap_or_default(),
            ));
        }
        if let Some(wait) = &settings.wait_time {
            config = config.wait_time(wait.as_std());
        }
        Ok(config)
    }

    /// The data center queries go to when they name none (Consul: the agent's own).
    pub fn datacenter(mut self, datacenter: impl Into<String>) -> Self {
        self.datacenter = Some(datacenter.into());
        self
    }

    /// The ACL token, sent as `X-Consul-Token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// HTTP basic auth in front of the agent.
    pub fn basic_auth(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.basic_auth = Some((username.into(), password.into()));
        self
    }

    /// How long a blocking query waits for a change (Consul caps it at 10 minutes; zero means
    /// Consul's default, 5 minutes).
    pub fn wait_time(mut self, wait: Duration) -> Self {
        self.wait = if wait.is_zero() {
            DEFAULT_WAIT
        } else {
            wait.min(MAX_WAIT)
        };
        self
    }

    /// The consistency mode of reads (`?stale` / `?consistent`; the default sends neither).
    pub fn consistency(mut self, mode: ConsulConsistencyMode) -> Self {
        self.consistency = mode;
        self
    }

    /// The agent's address as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The blocking wait.
    pub fn wait(&self) -> Duration {
        self.wait
    }
}

/// The answer to a blocking query: the value and the `X-Consul-Index` to block on next.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocking<T> {
    /// `X-Consul-Index` of the answer.
    pub index: u64,
    /// The answer.
    pub value: T,
}

/// The index to send with the next blocking query after one answered `returned`, given the
/// index `sent` with it, as Consul's blocking query docs prescribe: an index that went
/// backwards (a KV prefix whose newest key was deleted and its tombstone reaped, a snapshot
/// restore) resets to 0, which answers at once; and an index of 0 is never blocked on (that
/// would not block), 1 is sent instead.
///
/// ```
/// use gloo_discovery::consul::next_index;
/// assert_eq!(next_index(10, 12), 12);
/// assert_eq!(next_index(10, 7), 0);   // went backwards: start over
/// assert_eq!(next_index(0, 0), 1);    // never block on 0
/// ```
pub fn next_index(sent: u64, returned: u64) -> u64 {
    if returned < sent {
        0
    } else {
        returned.max(1)
    }
}

/// The index a blocking query watch blocks on, updated from each answer with [`next_index`].
///
/// ```
/// use gloo_discovery::consul::BlockingIndex;
/// let mut index = BlockingIndex::default();
/// assert!(index.advance(7));   // the first answer
/// assert!(!index.advance(7));  // the wait ended without a change
/// assert!(index.advance(3));   // went backwards: a change, and the next query starts over
/// assert_eq!(index.get(), 0);
/// ```
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockingIndex(u64);

impl BlockingIndex {
    /// The index to send with the next query (0: answer at once).
    pub fn get(self) -> u64 {
        self.0
    }

    /// Takes the `X-Consul-Index` of an answer; false when it is the index the query blocked
    /// on (the wait ended without a change).
    pub fn advance(&mut self, returned: u64) -> bool {
        let unchanged = self.0 != 0 && returned == self.0;
        self.0 = next_index(self.0, returned);
        !unchanged
    }

    /// Starts over from 0 (after a failure the index may be stale).
    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

/// One instance of a service, as `/v1/health/service/<name>` lists it: the node, the
/// service registration and every check of both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceEntry {
    /// The node the instance runs on.
    pub node: Node,
    /// The service registration.
    pub service: AgentService,
    /// The node's and the instance's checks.
    #[serde(default, deserialize_with = "null_as_default")]
    pub checks: Vec<HealthCheck>,
}

impl ServiceEntry {
    /// The address to send traffic to: the service's own address, else its node's.
    pub fn address(&self) -> &str {
        if self.service.address.is_empty() {
            &self.node.address
        } else {
            &self.service.address
        }
    }

    /// Whether any check of the instance or its node is `critical`.
    pub fn is_critical(&self) -> bool {
        self.checks.iter().any(|c| c.status == "critical")
    }
}

/// A Consul node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    /// The node's name.
    #[serde(default)]
    pub node: String,
    /// The node's address.
    #[serde(default)]
    pub address: String,
    /// The node's data center.
    #[serde(default)]
    pub datacenter: String,
}

/// A service registration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentService {
    /// The instance's ID (unique per node).
    #[serde(rename = "ID", default)]
    pub id: String,
    /// The service name.
    #[serde(default)]
    pub service: String,
    /// The instance's tags.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    /// The instance's address; empty means the node's.
    #[serde(default)]
    pub address: String,
    /// The instance's port.
    #[serde(default)]
    pub port: u32,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthCheck {
    /// The check's ID.
    #[serde(rename = "CheckID", default)]
    pub check_id: String,
    /// `passing`, `warning` or `critical`.
    #[serde(default)]
    pub status: String,
    /// The instance it checks; empty for a node check.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
}

/// One KV entry as `/v1/kv/<prefix>?recurse` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    /// The full key.
    pub key: String,
    /// The value, base64 (null for an empty value).
    #[serde(default)]
    pub value: Option<String>,
    /// The index of the entry's last write.
    #[serde(default)]
    pub modify_index: u64,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A Consul HTTP API client (plain HTTP, pooled connections). Cheap to clone.
#[derive(Clone)]
pub struct ConsulClient {
    config: ConsulConfig,
    base: String,
    http: Client<HttpConnector, Empty<Bytes>>,
}

impl fmt::Debug for ConsulClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsulClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Characters escaped in a path segment or query value (everything but RFC 3986 unreserved).
fn escape(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl ConsulClient {
    /// A client for `config`; fails if the address is not a plain `http` address. Needs a
    /// tokio runtime when it sends requests.
    pub fn new(config: ConsulConfig) -> Result<Self, ConsulError> {
        let address = config.address.trim_end_matches('/');
        let base = if address.contains("://") {
            address.to_string()
        } else {
            format!("http://{address}")
        };
        let uri: Uri = base.parse().map_err(|err| {
            ConsulError::new(format!("Consul address `{}`: {err}", config.address))
        })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(ConsulError::new(format!(
                "Consul address `{}`: only plain http://host:port addresses are supported",
                config.address
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Ok(ConsulClient { config, base, http })
    }

    /// The configuration.
    pub fn config(&self) -> &ConsulConfig {
        &self.config
    }

    /// The known data centers (`GET /v1/catalog/datacenters`).
    pub async fn datacenters(&self) -> Result<Vec<String>, ConsulError> {
        let (url, _, body) = self
            .get("/v1/catalog/datacenters", None, None)
            .await?
            .found()?;
        json(&url, &body)
    }

    /// The services of a data center with their tags (`GET /v1/catalog/services`), blocking
    /// until the catalog's index passes `index` (0 answers at once) or the wait ends.
    pub async fn catalog_services(
        &self,
        datacenter: Option<&str>,
        index: u64,
    ) -> Result<Blocking<BTreeMap<String, Vec<String>>>, ConsulError> {
        let (url, index, body) = self
            .get("/v1/catalog/services", datacenter, Some(index))
            .await?
            .found()?;
        let services: BTreeMap<String, Option<Vec<String>>> = json(&url, &body)?;
        Ok(Blocking {
            index,
            value: services
                .into_iter()
                .map(|(name, tags)| (name, tags.unwrap_or_default()))
                .collect(),
        })
    }

    /// The instances of a service with their health (`GET /v1/health/service/<name>`),
    /// blocking until the service's index passes `index` or the wait ends.
    pub async fn health_service(
        &self,
        service: &str,
        datacenter: Option<&str>,
        index: u64,
    ) -> Result<Blocking<Vec<ServiceEntry>>, ConsulError> {
        let path = format!("/v1/health/service/{}", escape(service, false));
        let (url, index, body) = self.get(&path, datacenter, Some(index)).await?.found()?;
        Ok(Blocking {
            index,
            value: json::<Option<Vec<ServiceEntry>>>(&url, &body)?.unwrap_or_default(),
        })
    }

    /// Every KV entry under `prefix` (`GET /v1/kv/<prefix>?recurse=true`), blocking until
    /// the prefix's index passes `index` or the wait ends. No entry (Consul's 404) is an empty
    /// list.
    pub async fn kv_list(
        &self,
        prefix: &str,
        index: u64,
    ) -> Result<Blocking<Vec<KvPair>>, ConsulError> {
        let path = format!("/v1/kv/{}?recurse=true", escape(prefix, true));
        let answer = self.get(&path, None, Some(index)).await?;
        let value = match &answer.body {
            None => Vec::new(),
            Some(body) => json::<Option<Vec<KvPair>>>(&answer.url, body)?.unwrap_or_default(),
        };
        Ok(Blocking {
            index: answer.index,
            value,
        })
    }

    /// GETs `path` (which may carry a query already) with the data center, blocking index and
    /// consistency parameters. `Ok(None)` is a 404 (with its index, for KV); other failures
    /// are errors naming the URL.
    async fn get(
        &self,
        path: &str,
        datacenter: Option<&str>,
        index: Option<u64>,
    ) -> Result<Answer, ConsulError> {
        let mut url = format!("{}{path}", self.base);
        let mut separator = if path.contains('?') { '&' } else { '?' };
        let mut param = |url: &mut String, text: String| {
            url.push(separator);
            url.push_str(&text);
            separator = '&';
        };
        if let Some(dc) = datacenter.or(self.config.datacenter.as_deref()) {
            param(&mut url, format!("dc={}", escape(dc, false)));
        }
        match self.config.consistency {
            ConsulConsistencyMode::DefaultMode => {}
            ConsulConsistencyMode::StaleMode => param(&mut url, "stale".into()),
            ConsulConsistencyMode::ConsistentMode => param(&mut url, "consistent".into()),
        }
        let index_sent = index;
        let mut timeout = CONNECT_TIMEOUT + ANSWER_SLACK;
        if let Some(index) = index.filter(|i| *i > 0) {
            param(&mut url, format!("index={index}"));
            param(&mut url, format!("wait={}ms", self.config.wait.as_millis()));
            timeout += self.config.wait + self.config.wait / 16;
        }
        let mut request = Request::builder().method(Method::GET).uri(url.as_str());
        if let Some(token) = &self.config.token {
            request = request.header("X-Consul-Token", token);
        }
        if let Some((user, password)) = &self.config.basic_auth {
            use base64::Engine;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        let request = request
            .body(Empty::new())
            .map_err(|err| ConsulError::new(format!("GET {url}: {err}")))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|err| ConsulError::new(format!("GET {url}: {}", error_chain(&err))))?;
            let status = response.status();
            let index = response
                .headers()
                .get("X-Consul-Index")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|err| ConsulError::new(format!("GET {url}: reading the answer: {err}")))?
                .to_bytes();
            Ok::<_, ConsulError>((status, index, body))
        };
        let (status, returned, body) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ConsulError::new(format!("GET {url}: no answer within {timeout:?}")))??;
        let index = returned.unwrap_or(0);
        if status == StatusCode::NOT_FOUND || status == StatusCode::OK {
            // A blocking query's answer always has its index: without one, the next query
            // could not block.
            if index_sent.is_some() && returned.is_none() {
                return Err(ConsulError::new(format!(
                    "GET {url}: the answer ({status}) has no X-Consul-Index header (not a Consul agent?)"
                )));
            }
        }
        if status == StatusCode::NOT_FOUND {
            return Ok(Answer {
                url,
                index,
                body: None,
            });
        }
        if status != StatusCode::OK {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            return Err(ConsulError {
                message: format!(
                    "GET {url}: Consul answered {status}{}{text}",
                    if text.is_empty() { "" } else { ": " }
                ),
                status: Some(status),
            });
        }
        Ok(Answer {
            url,
            index,
            body: Some(body),
        })
    }
}

/// A Consul answer: the URL asked, `X-Consul-Index` (0 when absent) and the body (`None` for
/// a 404).
struct Answer {
    url: String,
    index: u64,
    body: Option<Bytes>,
}

impl Answer {
    /// The body, or an error naming the URL for a 404.
    fn found(self) -> Result<(String, u64, Bytes), ConsulError> {
        match self.body {
            Some(body) => Ok((self.url, self.index, body)),
            None => Err(ConsulError {
                message: format!("GET {}: Consul answered 404 Not Found", self.url),
                status: Some(StatusCode::NOT_FOUND),
            }),
        }
    }
}

fn json<T: serde::de::DeserializeOwned>(url: &str, body: &Bytes) -> Result<T, ConsulError> {
    serde_json::from_slice(body).map_err(|err| {
        ConsulError::new(format!(
            "GET {url}: the answer is not what Consul sends: {err}"
        ))
    })
}

/// An error and its sources, joined (hyper's "client error (Connect)" alone says little).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_entries_parse_with_null_tags_and_node_checks() {
        let body = r#"[{"Node":{"ID":"x","Node":"n1","Address":"10.0.0.1","Datacenter":"dc1","TaggedAddresses":null,"Meta":null,"CreateIndex":5,"ModifyIndex":5},
            "Service":{"ID":"web-1","Service":"web","Tags":null,"Address":"","Meta":null,"Port":8080,"Weights":{"Passing":1,"Warning":1},"EnableTagOverride":false,"CreateIndex":6,"ModifyIndex":6},
            "Checks":[{"Node":"n1","CheckID":"serfHealth","Name":"Serf Health Status","Status":"critical","Notes":"","Output":"","ServiceID":"","ServiceName":"","ServiceTags":[],"Type":"","CreateIndex":5,"ModifyIndex":9}]}]"#;
        let entries: Vec<ServiceEntry> = json("u", &Bytes::from(body)).unwrap();
        assert_eq!(entries[0].address(), "10.0.0.1");
        assert!(entries[0].service.tags.is_empty());
        assert!(
            entries[0].is_critical(),
            "a critical node check makes the instance critical"
        );
    }

    #[test]
    fn addresses_must_be_plain_http() {
        assert!(ConsulClient::new(ConsulConfig::new("https://consul:8501")).is_err());
        assert!(ConsulClient::new(ConsulConfig::new("consul.service:8500")).is_ok());
        assert!(ConsulClient::new(ConsulConfig::new("http://[::1]:8500/")).is_ok());
    }

    #[test]
    fn escapes_path_segments_and_query_values() {
        assert_eq!(escape("a b/c", false), "a%20b%2Fc");
        assert_eq!(escape("gloo/x y", true), "gloo/x%20y");
    }

    #[test]
    fn settings_tls_fields_are_refused_by_name() {
        let settings = ConsulConfiguration {
            ca_file: Some("/ca.pem".into()),
            ..Default::default()
        };
        let err = ConsulConfig::from_settings(&settings).unwrap_err();
        assert!(err.to_string().contains("settings.consul.caFile"), "{err}");
        let settings = ConsulConfiguration {
            address: Some("old:8500".into()),
            http_address: Some("new:8500".into()),
            ..Default::default()
        };
        assert_eq!(
            ConsulConfig::from_settings(&settings).unwrap().address(),
            "new:8500"
        );
    }
}
