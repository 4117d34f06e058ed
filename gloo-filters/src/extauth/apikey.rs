//! Gloo's API key step.

use std::collections::{BTreeMap, HashMap};

use http::header::WWW_AUTHENTICATE;
use http::{HeaderName, HeaderValue, StatusCode};
use ring::digest::{digest, SHA256};
use subtle::ConstantTimeEq;

use super::config;
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};

/// The header Gloo reads the key from when none is configured.
pub const DEFAULT_API_KEY_HEADER: &str = "api-key";

#[derive(Debug, Clone)]
struct Entry {
    key: Vec<u8>,
    username: String,
    metadata: BTreeMap<String, String>,
}

/// Gloo's API key auth: the key in a header (`api-key` by default) must be one of the valid
/// keys.
///
/// * A missing or unknown key is `401` with `WWW-Authenticate: API key is missing or invalid`
///   (Gloo's answer, word for word).
/// * A valid key lets the request through with its owner (the secret's name) as user id and
///   the configured metadata entries as upstream headers; an entry the key lacks, or whose
///   value is not a valid header value, adds no header.
///
/// Keys are found by their SHA-256 digest and then compared in constant time, so the time an
/// answer takes says nothing about how much of a key was right.
///
/// ```
/// use gloo_filters::extauth::{ApiKeyAuth, Authorize, CheckRequest, Decision};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = ApiKeyAuth::new("api-key")?
///     .key("N2YwMDIx", "infra-apikey", [("team", "infra")])
///     .header_from_metadata("x-team", "team")?;
/// let mut request = CheckRequest::default();
/// request.headers.insert("api-key", "N2YwMDIx".parse()?);
/// let Decision::Allow(allowed) = auth.authorize(&request).await else { panic!("denied") };
/// assert_eq!(allowed.user_id.as_deref(), Some("infra-apikey"));
/// assert_eq!(allowed.upstream_headers["x-team"], "infra");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    header: HeaderName,
    keys: HashMap<[u8; 32], Entry>,
    headers_from_metadata: Vec<(HeaderName, String)>,
}

fn fingerprint(key: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, key).as_ref());
    out
}

impl ApiKeyAuth {
    /// No keys yet; keys are read from `header`.
    pub fn new(header: &str) -> Result<Self, ConfigError> {
        let header = HeaderName::try_from(header).map_err(|_| {
            ConfigError::new("headerName", format!("{header:?} is not a header name"))
        })?;
        Ok(Self {
            header,
            keys: HashMap::new(),
            headers_from_metadata: Vec::new(),
        })
    }

    /// Adds a valid key, its owner and its metadata.
    pub fn key<I, K, V>(
        mut self,
        key: impl Into<String>,
        username: impl Into<String>,
        metadata: I,
    ) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let key = key.into().into_bytes();
        self.keys.insert(
            fingerprint(&key),
            Entry {
                key,
                username: username.into(),
                metadata: metadata
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            },
        );
        self
    }

    /// Sends the key's metadata entry `entry` upstream in `header`.
    pub fn header_from_metadata(
        mut self,
        header: &str,
        entry: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        let name = HeaderName::try_from(header).map_err(|_| {
            ConfigError::new(
                format!("headersFromKeyMetadata[{header:?}]"),
                "not a header name",
            )
        })?;
        self.headers_from_metadata.push((name, entry.into()));
        Ok(self)
    }

    /// Builds Gloo's `apiKeyAuth`.
    pub(crate) fn from_config(
        path: &str,
        config: &config::ApiKeyAuthConfig,
    ) -> Result<Self, ConfigError> {
        if config.aerospike_apikey_storage.is_some() {
            return Err(ConfigError::new(
                format!("{path}.aerospikeApikeyStorage"),
                "Aerospike key storage is not supported",
            ));
        }
        let header = if config.header_name.is_empty() {
            DEFAULT_API_KEY_HEADER
        } else {
            &config.header_name
        };
        let mut auth = Self::new(header)
            .map_err(|e| ConfigError::new(format!("{path}.headerName"), e.message()))?;
        for (key, meta) in &config.valid_api_keys {
            auth = auth.key(key, &meta.username, meta.metadata.clone());
        }
        for (header, entry) in &config.headers_from_key_metadata {
            auth = auth
                .header_from_metadata(header, entry)
                .map_err(|e| ConfigError::new(format!("{path}.{}", e.path()), e.message()))?;
        }
        Ok(auth)
    }

    fn find(&self, presented: &[u8]) -> Option<&Entry> {
        let entry = self.keys.get(&fingerprint(presented))?;
        bool::from(entry.key.as_slice().ct_eq(presented)).then_some(entry)
    }
}

impl Authorize for ApiKeyAuth {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        let found = request
            .headers
            .get(&self.header)
            .and_then(|value| self.find(value.as_bytes()));
        let decision = match found {
            Some(entry) => {
                let mut allowed = Allowed {
                    user_id: (!entry.username.is_empty()).then(|| entry.username.clone()),
                    ..Allowed::default()
                };
                for (header, name) in &self.headers_from_metadata {
                    let value = entry
                        .metadata
                        .get(name)
                        .and_then(|v| HeaderValue::try_from(v.as_str()).ok());
                    if let Some(value) = value {
                        allowed.upstream_headers.insert(header.clone(), value);
                    }
                }
                Decision::Allow(allowed)
            }
            None => {
                let mut denied = Denied::status(StatusCode::UNAUTHORIZED);
                denied.headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("API key is missing or invalid"),
                );
                Decision::Deny(denied)
            }
        };
        Box::pin(std::future::ready(decision))
    }
}
