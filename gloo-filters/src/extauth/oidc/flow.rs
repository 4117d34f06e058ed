//! The authorization-code flow: [`OidcAuthorizationCode`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use regex::Regex;
use ring::rand::SystemRandom;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{with_query, ClientAuth, HyperIdpClient, Idp, IdpClient};
use super::config::{
    CookieOptions, EndSessionMethod, InternalSession, OidcAuthorizationCodeConfig, RedisSession,
    TokenClaimsToHeaders,
};
use super::cookies::{domain_matches, request_cookie, CookieAttributes};
use super::crypto::{ct_eq, pkce_challenge, random_token, Sealer};
use super::discovery::{absolute_uri, Discovery, Snapshot};
use super::error::OidcConfigError;
use super::session::{CookieStore, Loaded, Store, Tokens};
use super::tokens::{access_token_claims, validate_id_token, Claims, Rejection};
use crate::extauth::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use crate::jwt::token::Jwt;

/// The default bound on one call to the identity provider.
pub const DEFAULT_IDP_TIMEOUT: Duration = Duration::from_secs(5);
/// The default bound on one Redis call.
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a login may take: the flow cookie's lifetime, in seconds.
const FLOW_TTL: u64 = 600;
/// Gloo's default `preExpiryBuffer` of Redis sessions.
const DEFAULT_PRE_EXPIRY_BUFFER: Duration = Duration::from_secs(2);

/// What one login carries from the redirect to the callback, sealed in the flow cookie.
#[derive(Serialize, Deserialize)]
struct FlowState {
    state: String,
    nonce: String,
    /// The PKCE verifier (absent when the config manages PKCE itself).
    #[serde(default)]
    verifier: String,
    /// Where the user was going.
    url: String,
    /// Seconds since the epoch after which the callback is refused.
    exp: u64,
}

/// The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    refresh_token: String,
}

enum CallbackPath {
    Exact(String),
    Regex(Regex),
}

/// A claim copied to a header.
struct ClaimHeader {
    claim: String,
    header: HeaderName,
    append: bool,
}

enum Logout {
    /// `logoutPath`: redirect afterwards.
    User,
    /// `frontChannelLogout.path`: answer 200.
    FrontChannel,
}

struct Inner {
    client_id: String,
    idp: Idp,
    discovery: Discovery,
    app_url: String,
    redirect_uri: String,
    callback: CallbackPath,
    logout_path: Option<String>,
    front_channel_logout_path: Option<String>,
    after_logout_url: String,
    scope: String,
    auth_params: Vec<(String, String)>,
    token_params: Vec<(String, String)>,
    /// `authEndpointQueryParams` carries a `code_challenge`: PKCE is the config's business.
    config_pkce: bool,
    store: Store,
    fail_on_fetch_failure: bool,
    allow_refreshing: bool,
    /// Refresh this long before `exp` (Redis sessions).
    pre_expiry_buffer: u64,
    target_domain: Option<String>,
    session_id_header: Option<HeaderName>,
    id_token_header: Option<HeaderName>,
    access_token_header: Option<HeaderName>,
    bearer: bool,
    id_token_claims: Vec<ClaimHeader>,
    access_token_claims: Vec<ClaimHeader>,
    end_session_method: EndSessionMethod,
    flow_sealer: Sealer,
    flow_cookie: String,
    cookie_attributes: CookieAttributes,
    rng: SystemRandom,
}

/// Gloo's OIDC authorization-code auth step (`oauth2.oidcAuthorizationCode`). See the
/// [module docs](super) for the flow. Cheap to clone: clones share the discovery cache, the
/// session store's connection and the flow key.
#[derive(Clone)]
pub struct OidcAuthorizationCode {
    inner: Arc<Inner>,
}

impl fmt::Debug for OidcAuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAuthorizationCode")
            .field("client_id", &self.inner.client_id)
            .field("discovery", &self.inner.discovery)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds an [`OidcAuthorizationCode`] with non-default transport, timeouts or flow key.
#[must_use]
pub struct OidcAuthorizationCodeBuilder {
    config: OidcAuthorizationCodeConfig,
    client: Option<Arc<dyn IdpClient>>,
    idp_timeout: Duration,
    redis_timeout: Duration,
    flow_key: Option<Vec<u8>>,
}

impl fmt::Debug for OidcAuthorizationCodeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcAuthorizationCodeBuilder")
            .field("config", &self.config)
            .field("idp_timeout", &self.idp_timeout)
            .finish_non_exhaustive()
    }
}

impl OidcAuthorizationCode {
    /// The step for `config`, with the default client ([`HyperIdpClient`]: https or http),
    /// timeouts and a random flow key.
    pub fn new(config: OidcAuthorizationCodeConfig) -> Result<Self, OidcConfigError> {
        Self::builder(config).build()
    }

    /// A builder for the step.
    pub fn builder(config: OidcAuthorizationCodeConfig) -> OidcAuthorizationCodeBuilder {
        OidcAuthorizationCodeBuilder {
            config,
            client: None,
            idp_timeout: DEFAULT_IDP_TIMEOUT,
            redis_timeout: DEFAULT_REDIS_TIMEOUT,
            flow_key: None,
        }
    }
}

impl OidcAuthorizationCodeBuilder {
    /// Sends the calls to the identity provider through `client` (e.g. one with TLS).
    pub fn idp_client(mut self, client: impl IdpClient) -> Self {
        self.client = Some(Arc::new(client));
        self
    }

    /// Bounds every call to the identity provider (default [`DEFAULT_IDP_TIMEOUT`]).
    pub fn idp_timeout(mut self, timeout: Duration) -> Self {
        self.idp_timeout = timeout;
        self
    }

    /// Bounds every Redis call (default [`DEFAULT_REDIS_TIMEOUT`]).
    pub fn redis_timeout(mut self, timeout: Duration) -> Self {
        self.redis_timeout = timeout;
        self
    }

    /// The 32-byte key that seals the flow cookie (state, nonce, PKCE verifier, original
    /// URL). Replicas that share a login (the redirect served by one, the callback by
    /// another) need the same key, as Gloo's ext auth replicas share a signing key. Default:
    /// random per step.
    pub fn flow_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.flow_key = Some(key.into());
        self
    }

    /// Checks the config and builds the step.
    pub fn build(self) -> Result<OidcAuthorizationCode, OidcConfigError> {
        let config = self.config;
        let rng = SystemRandom::new();
        if config.client_id.is_empty() {
            return Err(OidcConfigError::new("clientId", "required"));
        }
        unsupported(&config)?;
        let app_url = absolute_uri("appUrl", &config.app_url)?;
        if config.callback_path.is_empty() {
            return Err(OidcConfigError::new("callbackPath", "required"));
        }
        let callback = if config.parse_callback_path_as_regex {
            let regex = Regex::new(&format!("^(?:{})$", config.callback_path))
                .map_err(|e| OidcConfigError::new("callbackPath", e.to_string()))?;
            CallbackPath::Regex(regex)
        } else if config.callback_path.starts_with('/') {
            CallbackPath::Exact(config.callback_path.clone())
        } else {
            return Err(OidcConfigError::new("callbackPath", "must start with /"));
        };
        let app_base = config.app_url.trim_end_matches('/').to_owned();
        let redirect_uri = format!("{app_base}{}", config.callback_path);
        absolute_uri("callbackPath", &redirect_uri)?;
        let path_field = |field: &str, path: &str| -> Result<Option<String>, OidcConfigError> {
            match path {
                "" => Ok(None),
                p if p.starts_with('/') => Ok(Some(p.to_owned())),
                _ => Err(OidcConfigError::new(field, "must start with /")),
            }
        };
        let logout_path = path_field("logoutPath", &config.logout_path)?;
        let front_channel_logout_path = match &config.front_channel_logout {
            Some(fcl) => path_field("frontChannelLogout.path", &fcl.path)?,
            None => None,
        };
        let after_logout_url = if config.after_logout_url.is_empty() {
            config.app_url.clone()
        } else if config.after_logout_url.starts_with('/') {
            let origin = format!(
                "{}://{}",
                app_url.scheme_str().unwrap_or("https"),
                app_url.authority().map_or("", |a| a.as_str())
            );
            format!("{origin}{}", config.after_logout_url)
        } else {
            absolute_uri("afterLogoutUrl", &config.after_logout_url)?;
            config.after_logout_url.clone()
        };

        let mut scopes = vec!["openid".to_owned()];
        for scope in &config.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }

        let headers = config.headers.clone().unwrap_or_default();
        let header = |field: &str, name: &str| -> Result<Option<HeaderName>, OidcConfigError> {
            if name.is_empty() {
                return Ok(None);
            }
            HeaderName::from_bytes(name.as_bytes())
                .map(Some)
                .map_err(|_| OidcConfigError::new(field, format!("{name:?} is not a header name")))
        };
        let id_token_header = header("headers.idTokenHeader", &headers.id_token_header)?;
        let access_token_header =
            header("headers.accessTokenHeader", &headers.access_token_header)?;
        let claims = |field: &str,
                      list: Option<&TokenClaimsToHeaders>|
         -> Result<Vec<ClaimHeader>, OidcConfigError> {
            let list = list.map_or(&[][..], |t| &t.claims_to_headers[..]);
            list.iter()
                .enumerate()
                .map(|(i, c)| {
                    if c.claim.is_empty() {
                        return Err(OidcConfigError::new(
                            format!("{field}[{i}].claim"),
                            "required",
                        ));
                    }
                    let header =
                        header(&format!("{field}[{i}].header"), &c.header)?.ok_or_else(|| {
                            OidcConfigError::new(format!("{field}[{i}].header"), "required")
                        })?;
                    Ok(ClaimHeader {
                        claim: c.claim.clone(),
                        header,
                        append: c.append,
                    })
                })
                .collect()
        };
        let id_token_claims = claims(
            "identityToken.claimsToHeaders",
            config.identity_token.as_ref(),
        )?;
        let access_token_claims =
            claims("accessToken.claimsToHeaders", config.access_token.as_ref())?;

        let session = SessionSettings::from_config(&config)?;
        let cookie_attributes = CookieAttributes::new(
            session.cookie_options.as_ref(),
            &session.field("cookieOptions"),
        )?;
        let (store, allow_refreshing, pre_expiry_buffer, target_domain, header_name) =
            match (&session.cookie, &session.redis) {
                (Some(_), Some(_)) => {
                    return Err(OidcConfigError::new(
                        session.field(""),
                        "only one of cookie and redis may be set",
                    ))
                }
                (_, Some(redis)) => {
                    let store = redis_store(
                        &session,
                        redis,
                        cookie_attributes.clone(),
                        self.redis_timeout,
                    )?;
                    let buffer = redis.pre_expiry_buffer.unwrap_or(DEFAULT_PRE_EXPIRY_BUFFER);
                    (
                        store,
                        redis.allow_refreshing.unwrap_or(true),
                        buffer.as_secs(),
                        redis.target_domain.clone(),
                        redis.header_name.clone(),
                    )
                }
                (cookie, None) => {
                    let default = InternalSession::default();
                    let cookie = cookie.as_ref().unwrap_or(&default);
                    let sealer = match &session.cipher_key {
                        None => None,
                        Some(key) => Some(Sealer::new(key.as_bytes()).ok_or_else(|| {
                            OidcConfigError::new(
                                session.field("cipherConfig.key"),
                                format!("must be 32 bytes, got {}", key.len()),
                            )
                        })?),
                    };
                    let store = Store::Cookie(Box::new(CookieStore::new(
                        &cookie.key_prefix,
                        sealer,
                        cookie_attributes.clone(),
                    )));
                    (
                        store,
                        cookie.allow_refreshing.unwrap_or(false),
                        0,
                        cookie.target_domain.clone(),
                        String::new(),
                    )
                }
            };
        let session_id_header = if header_name.is_empty() {
            header("sessionIdHeaderName", &config.session_id_header_name)?
        } else {
            header(&session.field("redis.headerName"), &header_name)?
        };

        let flow_sealer = match &self.flow_key {
            Some(key) => Sealer::new(key)
                .ok_or_else(|| OidcConfigError::new("", "the flow key must be 32 bytes"))?,
            None => Sealer::random(&rng)
                .ok_or_else(|| OidcConfigError::new("", "the OS gave no random bytes"))?,
        };
        let flow_cookie = format!("{}oidc_state", store.cookie_prefix());

        let idp = Idp {
            client: self
                .client
                .unwrap_or_else(|| Arc::new(HyperIdpClient::new())),
            timeout: self.idp_timeout,
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.clone(),
        };
        let discovery = Discovery::new(
            idp.clone(),
            &config.issuer_url,
            config.discovery_override.as_ref(),
            config.discovery_poll_interval,
            config.jwks_cache_refresh_policy.as_ref(),
        )?;

        Ok(OidcAuthorizationCode {
            inner: Arc::new(Inner {
                client_id: config.client_id.clone(),
                idp,
                discovery,
                app_url: config.app_url.clone(),
                redirect_uri,
                callback,
                logout_path,
                front_channel_logout_path,
                after_logout_url,
                scope: scopes.join(" "),
                auth_params: config
                    .auth_endpoint_query_params
                    .clone()
                    .into_iter()
                    .collect(),
                token_params: config
                    .token_endpoint_query_params
                    .clone()
                    .into_iter()
                    .collect(),
                config_pkce: config
                    .auth_endpoint_query_params
                    .contains_key("code_challenge"),
                store,
                fail_on_fetch_failure: session.fail_on_fetch_failure,
                allow_refreshing,
                pre_expiry_buffer,
                target_domain: (!target_domain.is_empty()).then_some(target_domain),
                session_id_header,
                id_token_header,
                access_token_header,
                bearer: headers.use_bearer_schema_for_authorization.unwrap_or(false),
                id_token_claims,
                access_token_claims,
                end_session_method: config
                    .end_session_properties
                    .as_ref()
                    .map(|p| p.method_type)
                    .unwrap_or_default(),
                flow_sealer,
                flow_cookie,
                cookie_attributes,
                rng,
            }),
        })
    }
}

/// Refuses the fields this step does not implement, naming them.
fn unsupported(config: &OidcAuthorizationCodeConfig) -> Result<(), OidcConfigError> {
    let refuse = |field: &str, what: &str| {
        Err(OidcConfigError::new(
            field,
            format!("{what} is not supported"),
        ))
    };
    if config.azure.is_some() {
        return refuse("azure", "Microsoft Entra ID distributed claims");
    }
    if config.pk_jwt_client_authentication_config.is_some() {
        return refuse(
            "pkJwtClientAuthenticationConfig",
            "private key JWT client authentication",
        );
    }
    if config.auto_map_from_metadata.is_some() {
        return refuse(
            "autoMapFromMetadata",
            "query parameters from dynamic metadata",
        );
    }
    if !config.dynamic_metadata_from_claims.is_empty() {
        return refuse("dynamicMetadataFromClaims", "dynamic metadata");
    }
    Ok(())
}

/// `userSession`, or the deprecated `session`, in one shape.
struct SessionSettings {
    /// `userSession` or `session`.
    name: &'static str,
    fail_on_fetch_failure: bool,
    cookie_options: Option<CookieOptions>,
    cookie: Option<InternalSession>,
    redis: Option<RedisSession>,
    cipher_key: Option<String>,
}

impl SessionSettings {
    fn from_config(config: &OidcAuthorizationCodeConfig) -> Result<Self, OidcConfigError> {
        if let Some(user) = &config.user_session {
            return Ok(Self {
                name: "userSession",
                fail_on_fetch_failure: user.fail_on_fetch_failure,
                cookie_options: user.cookie_options.clone(),
                cookie: user.cookie.clone(),
                redis: user.redis.clone(),
                cipher_key: user.cipher_config.as_ref().map(|c| c.key.clone()),
            });
        }
        let legacy = config.session.clone().unwrap_or_default();
        if legacy
            .cipher_config
            .as_ref()
            .is_some_and(|c| c.key_ref.is_some())
        {
            return Err(OidcConfigError::new(
                "session.cipherConfig.keyRef",
                "an unresolved secret reference: give the key in userSession.cipherConfig.key",
            ));
        }
        Ok(Self {
            name: "session",
            fail_on_fetch_failure: legacy.fail_on_fetch_failure,
            cookie_options: legacy.cookie_options,
            cookie: legacy.cookie,
            redis: legacy.redis,
            cipher_key: None,
        })
    }

    fn field(&self, rest: &str) -> String {
        if rest.is_empty() {
            self.name.to_owned()
        } else {
            format!("{}.{rest}", self.name)
        }
    }
}

#[cfg(feature = "extauth-oidc-redis")]
fn redis_store(
    session: &SessionSettings,
    redis: &RedisSession,
    attributes: CookieAttributes,
    timeout: Duration,
) -> Result<Store, OidcConfigError> {
    use super::config::SocketType;
    use super::session::redis_store::RedisStore;

    let options = redis.options.clone().unwrap_or_default();
    let field = |rest: &str| session.field(&format!("redis.options.{rest}"));
    if options.socket_type == SocketType::Tls {
        return Err(OidcConfigError::new(
            field("socketType"),
            "TLS to Redis is not supported",
        ));
    }
    if !options.tls_cert_mount_path.is_empty() {
        return Err(OidcConfigError::new(
            field("tlsCertMountPath"),
            "TLS to Redis is not supported",
        ));
    }
    if options.db < 0 {
        return Err(OidcConfigError::new(field("db"), "must not be negative"));
    }
    let url = if options.host.is_empty() {
        return Err(OidcConfigError::new(field("host"), "required"));
    } else if let Some(path) = options.host.strip_prefix("unix://") {
        format!("redis+unix://{path}?db={}", options.db)
    } else if options.host.contains(['/', '@', '?', '#']) {
        return Err(OidcConfigError::new(
            field("host"),
            format!("{:?} is not address:port or unix://path", options.host),
        ));
    } else {
        format!("redis://{}/{}", options.host, options.db)
    };
    redis::Client::open(url.as_str())
        .map_err(|e| OidcConfigError::new(field("host"), e.to_string()))?;
    let cookie_name = &redis.cookie_name;
    if !cookie_name.is_empty() && attributes.set(cookie_name, "x").is_none() {
        return Err(OidcConfigError::new(
            session.field("redis.cookieName"),
            format!("{cookie_name:?} is not a cookie name"),
        ));
    }
    Ok(Store::Redis(RedisStore::new(
        url,
        &redis.key_prefix,
        cookie_name,
        attributes,
        timeout,
    )))
}

#[cfg(not(feature = "extauth-oidc-redis"))]
fn redis_store(
    session: &SessionSettings,
    _redis: &RedisSession,
    _attributes: CookieAttributes,
    _timeout: Duration,
) -> Result<Store, OidcConfigError> {
    Err(OidcConfigError::new(
        session.field("redis"),
        "Redis sessions need the extauth-oidc-redis cargo feature",
    ))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn answer(status: StatusCode, body: &'static str) -> Decision {
    let mut denied = Denied::status(status);
    denied.body = Bytes::from_static(body.as_bytes());
    if !body.is_empty() {
        denied.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
    }
    Decision::Deny(denied)
}

/// The identity provider or the session store cannot be reached.
fn unavailable() -> Decision {
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        "identity provider or session store unavailable",
    )
}

/// A `302` to `location` with `cookies` (a `500` if `location` cannot be a header value).
fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Decision {
    let Ok(location) = HeaderValue::from_str(location) else {
        return answer(StatusCode::INTERNAL_SERVER_ERROR, "");
    };
    let mut denied = Denied::status(StatusCode::FOUND);
    denied.headers.insert(LOCATION, location);
    denied
        .headers
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        denied.headers.append(SET_COOKIE, cookie);
    }
    Decision::Deny(denied)
}

/// A claim as a header value: strings as they are, anything else as JSON.
fn claim_value(value: &Value) -> Option<HeaderValue> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    HeaderValue::from_str(&text).ok()
}

impl Inner {
    fn is_callback(&self, path: &str) -> bool {
        match &self.callback {
            CallbackPath::Exact(p) => p == path,
            CallbackPath::Regex(r) => r.is_match(path),
        }
    }

    fn host<'a>(&self, request: &'a CheckRequest) -> &'a str {
        if !request.host.is_empty() {
            return &request.host;
        }
        request
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| request.headers.get(http::header::HOST)?.to_str().ok())
            .unwrap_or("")
    }

    /// Where the user was going: the request's own URL, or `appUrl` when it is unknown.
    fn original_url(&self, request: &CheckRequest) -> String {
        let host = self.host(request);
        if host.is_empty() {
            return self.app_url.clone();
        }
        let scheme = match (request.scheme.as_str(), request.uri.scheme_str()) {
            ("http" | "https", _) => request.scheme.as_str(),
            (_, Some(scheme)) => scheme,
            _ => self.app_url.split("://").next().unwrap_or("https"),
        };
        let path = request.uri.path_and_query().map_or("/", |p| p.as_str());
        format!("{scheme}://{host}{path}")
    }

    async fn check(&self, request: &CheckRequest) -> Decision {
        if let Some(domain) = &self.target_domain {
            if !domain_matches(self.host(request), domain) {
                return answer(StatusCode::FORBIDDEN, "");
            }
        }
        let path = request.uri.path();
        if self.is_callback(path) {
            return self.callback(request).await;
        }
        if self.logout_path.as_deref() == Some(path) {
            return self.logout(request, Logout::User).await;
        }
        if self.front_channel_logout_path.as_deref() == Some(path) {
            return self.logout(request, Logout::FrontChannel).await;
        }
        let loaded = match self.store.load(&request.headers).await {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(%error, "OIDC session store failed");
                if self.fail_on_fetch_failure {
                    return unavailable();
                }
                None
            }
        };
        match loaded {
            Some(session) => self.resume(request, session).await,
            None => self.start(request).await,
        }
    }

    /// No session: send the browser to the authorization endpoint.
    async fn start(&self, request: &CheckRequest) -> Decision {
        let snapshot = match self.discovery.current().await {
            Ok(snapshot) => snapshot,
            Err(_) => return unavailable(),
        };
        let (Some(state), Some(nonce), Some(verifier)) = (
            random_token(&self.rng, 32),
            random_token(&self.rng, 32),
            random_token(&self.rng, 32),
        ) else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, "");
        };
        let verifier = if self.config_pkce {
            String::new()
        } else {
            verifier
        };
        let challenge = pkce_challenge(&verifier);
        let flow = FlowState {
            state: state.clone(),
            nonce: nonce.clone(),
            verifier: verifier.clone(),
            url: self.original_url(request),
            exp: now() + FLOW_TTL,
        };
        let Some(cookie) = serde_json::to_vec(&flow)
            .ok()
            .and_then(|json| self.flow_sealer.seal(&self.rng, &self.flow_cookie, &json))
            .and_then(|sealed| {
                self.cookie_attributes
                    .set_flow(&self.flow_cookie, &sealed, FLOW_TTL)
            })
        else {
            return answer(StatusCode::INTERNAL_SERVER_ERROR, "");
        };
        let mut params: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &state),
            ("nonce", &nonce),
        ];
        if !self.config_pkce {
            params.push(("code_challenge", &challenge));
            params.push(("code_challenge_method", "S256"));
        }
        for (name, value) in &self.auth_params {
            params.retain(|(n, _)| n != name);
            params.push((name, value));
        }
        let location = with_query(&snapshot.metadata.authorization_endpoint, params);
        redirect(&location, vec![cookie])
    }

    /// The identity provider sent the browser back.
    async fn callback(&self, request: &CheckRequest) -> Decision {
        let query: Vec<(String, String)> =
            form_urlencoded::parse(request.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        if let Some(error) = param("error") {
            tracing::info!(error, "OIDC login refused by the identity provider");
            return answer(StatusCode::UNAUTHORIZED, "login failed");
        }
        let (Some(code), Some(state)) = (param("code"), param("state")) else {
            return answer(StatusCode::UNAUTHORIZED, "not a login callback");
        };
        let flow = request_cookie(&request.headers, &self.flow_cookie)
            .and_then(|sealed| self.flow_sealer.open(&self.flow_cookie, sealed))
            .and_then(|json| serde_json::from_slice::<FlowState>(&json).ok())
            .filter(|flow| now() < flow.exp);
        let Some(flow) = flow else {
            return answer(StatusCode::UNAUTHORIZED, "no login in progress");
        };
        if !ct_eq(state.as_bytes(), flow.state.as_bytes()) {
            return answer(StatusCode::UNAUTHORIZED, "state does not match");
        }
        let snapshot = match self.discovery.current().await {
            Ok(snapshot) => snapshot,
            Err(_) => return unavailable(),
        };
        let session_id = self.store.new_id(&self.rng);
        let mut params: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
        ];
        if !flow.verifier.is_empty() {
            params.push(("code_verifier", &flow.verifier));
        }
        for (name, value) in &self.token_params {
            params.retain(|(n, _)| n != name);
            params.push((name, value));
        }
        let mut headers = Vec::new();
        if let (Some(name), Some(id)) = (&self.session_id_header, &session_id) {
            if let Ok(value) = HeaderValue::from_str(id) {
                headers.push((name.clone(), value));
            }
        }
        let answer_tokens = match self.token_request(&snapshot, &params, &headers).await {
            Ok(Some(tokens)) => tokens,
            Ok(None) => return answer(StatusCode::UNAUTHORIZED, "the code was not accepted"),
            Err(()) => return unavailable(),
        };
        let (validated, _) = self
            .validate(&answer_tokens.id_token, snapshot, Some(&flow.nonce))
            .await;
        if let Err(rejection) = validated {
            tracing::warn!(?rejection, "OIDC ID token refused at the callback");
            return answer(StatusCode::UNAUTHORIZED, "the ID token is not valid");
        }
        let tokens = Tokens {
            id_token: answer_tokens.id_token,
            access_token: answer_tokens.access_token,
            refresh_token: answer_tokens.refresh_token,
        };
        let mut cookies = match self
            .store
            .save(&self.rng, session_id.as_deref(), &tokens)
            .await
        {
            Ok(cookies) => cookies,
            Err(error) => {
                tracing::warn!(%error, "OIDC session not saved");
                return unavailable();
            }
        };
        cookies.extend(self.cookie_attributes.expire_flow(&self.flow_cookie));
        redirect(&flow.url, cookies)
    }

    /// POSTs to the token endpoint; `Ok(None)` when it refuses, `Err` when unreachable.
    async fn token_request(
        &self,
        snapshot: &Snapshot,
        params: &[(&str, &str)],
        headers: &[(HeaderName, HeaderValue)],
    ) -> Result<Option<TokenAnswer>, ()> {
        let metadata = &snapshot.metadata;
        let response = self
            .idp
            .post_form(
                &metadata.token_endpoint,
                &metadata.client_auth,
                params,
                headers,
            )
            .await
            .map_err(|error| tracing::warn!(%error, "OIDC token endpoint unreachable"))?;
        if response.status() != StatusCode::OK {
            tracing::warn!(
                status = %response.status(),
                body = %String::from_utf8_lossy(response.body()),
                "OIDC token request refused"
            );
            return Ok(None);
        }
        match serde_json::from_slice::<TokenAnswer>(response.body()) {
            Ok(tokens) if !tokens.id_token.is_empty() => Ok(Some(tokens)),
            _ => {
                tracing::warn!("OIDC token answer without an ID token");
                Ok(None)
            }
        }
    }

    /// Validates an ID token, refetching the keys once (as the policy allows) for an unknown
    /// key; the snapshot it was checked against.
    async fn validate(
        &self,
        token: &str,
        snapshot: Arc<Snapshot>,
        nonce: Option<&str>,
    ) -> (Result<Claims, Rejection>, Arc<Snapshot>) {
        match validate_id_token(token, &snapshot, &self.client_id, now(), nonce) {
            Err(Rejection::UnknownKey) => match self.discovery.refresh_keys(&snapshot).await {
                Some(fresh) => (
                    validate_id_token(token, &fresh, &self.client_id, now(), nonce),
                    fresh,
                ),
                None => (Err(Rejection::UnknownKey), snapshot),
            },
            result => (result, snapshot),
        }
    }

    /// A session came with the request.
    async fn resume(&self, request: &CheckRequest, session: Loaded) -> Decision {
        let snapshot = match self.discovery.current().await {
            Ok(snapshot) => snapshot,
            Err(_) => return unavailable(),
        };
        let (validated, snapshot) = self
            .validate(&session.tokens.id_token, snapshot, None)
            .await;
        let refreshable = self.allow_refreshing && !session.tokens.refresh_token.is_empty();
        match validated {
            Ok(claims) => {
                if refreshable && claims.exp.saturating_sub(self.pre_expiry_buffer) <= now() {
                    if let Some((tokens, claims, cookies)) = self.refresh(&session, &snapshot).await
                    {
                        return self.allow(request, &tokens, &claims, &snapshot, cookies);
                    }
                }
                self.allow(request, &session.tokens, &claims, &snapshot, Vec::new())
            }
            Err(Rejection::Expired) if refreshable => {
                match self.refresh(&session, &snapshot).await {
                    Some((tokens, claims, cookies)) => {
                        self.allow(request, &tokens, &claims, &snapshot, cookies)
                    }
                    None => self.start(request).await,
                }
            }
            Err(rejection) => {
                tracing::debug!(?rejection, "OIDC session not accepted; logging in again");
                self.start(request).await
            }
        }
    }

    /// Trades the refresh token for new tokens and stores them.
    async fn refresh(
        &self,
        session: &Loaded,
        snapshot: &Arc<Snapshot>,
    ) -> Option<(Tokens, Claims, Vec<HeaderValue>)> {
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", session.tokens.refresh_token.as_str()),
        ];
        let answer = self.token_request(snapshot, &params, &[]).await.ok()??;
        let (validated, _) = self
            .validate(&answer.id_token, Arc::clone(snapshot), None)
            .await;
        let claims = validated
            .map_err(|rejection| tracing::warn!(?rejection, "refreshed OIDC ID token refused"))
            .ok()?;
        // OpenID Connect Core §12.2: the refreshed token is about the same user.
        let old_sub = Jwt::parse(&session.tokens.id_token).ok().and_then(|jwt| {
            jwt.payload
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if old_sub.as_deref() != claims.sub() {
            tracing::warn!("refreshed OIDC ID token is about another subject");
            return None;
        }
        let keep = |new: String, old: &str| if new.is_empty() { old.to_owned() } else { new };
        let tokens = Tokens {
            id_token: answer.id_token,
            access_token: keep(answer.access_token, &session.tokens.access_token),
            refresh_token: keep(answer.refresh_token, &session.tokens.refresh_token),
        };
        let cookies = self
            .store
            .save(&self.rng, session.id.as_deref(), &tokens)
            .await
            .map_err(|error| tracing::warn!(%error, "refreshed OIDC session not saved"))
            .ok()?;
        Some((tokens, claims, cookies))
    }

    fn token_header_value(&self, name: &HeaderName, token: &str) -> Option<HeaderValue> {
        if self.bearer && name == http::header::AUTHORIZATION {
            HeaderValue::from_str(&format!("Bearer {token}")).ok()
        } else {
            HeaderValue::from_str(token).ok()
        }
    }

    fn allow(
        &self,
        request: &CheckRequest,
        tokens: &Tokens,
        claims: &Claims,
        snapshot: &Snapshot,
        cookies: Vec<HeaderValue>,
    ) -> Decision {
        let mut upstream = HeaderMap::new();
        if let Some(name) = &self.id_token_header {
            if let Some(value) = self.token_header_value(name, &tokens.id_token) {
                upstream.insert(name.clone(), value);
            }
        }
        if let (Some(name), false) = (&self.access_token_header, tokens.access_token.is_empty()) {
            if let Some(value) = self.token_header_value(name, &tokens.access_token) {
                upstream.insert(name.clone(), value);
            }
        }
        copy_claims(
            &mut upstream,
            &request.headers,
            &self.id_token_claims,
            claims,
        );
        if !self.access_token_claims.is_empty() {
            if let Some(access) = access_token_claims(&tokens.access_token, snapshot, now()) {
                copy_claims(
                    &mut upstream,
                    &request.headers,
                    &self.access_token_claims,
                    &access,
                );
            }
        }
        // A header this step writes but had no value for this time (a claim the token lacks)
        // is removed, so the client's own value never reaches the upstream as if it were the
        // provider's. Appending claim headers keep the client's values by design.
        let owned = [&self.id_token_header, &self.access_token_header]
            .into_iter()
            .flatten()
            .chain(
                self.id_token_claims
                    .iter()
                    .chain(&self.access_token_claims)
                    .filter(|c| !c.append)
                    .map(|c| &c.header),
            );
        let mut remove_upstream_headers = Vec::new();
        for name in owned {
            if !upstream.contains_key(name) && !remove_upstream_headers.contains(name) {
                remove_upstream_headers.push(name.clone());
            }
        }
        let mut response_headers = HeaderMap::new();
        for cookie in cookies {
            response_headers.append(SET_COOKIE, cookie);
        }
        Decision::Allow(Allowed {
            upstream_headers: upstream,
            remove_upstream_headers,
            response_headers,
            user_id: claims.sub().map(str::to_owned),
        })
    }

    /// Ends the session: the store entry and cookies, the provider's tokens (revoked when it
    /// has a revocation endpoint), and for `logoutPath` the provider's session too.
    async fn logout(&self, request: &CheckRequest, kind: Logout) -> Decision {
        let session = self.store.load(&request.headers).await.ok().flatten();
        let snapshot = self.discovery.current().await.ok();
        if let (Some(session), Some(snapshot)) = (&session, &snapshot) {
            self.revoke(snapshot, &session.tokens).await;
        }
        let cookies = self
            .store
            .clear(session.as_ref().and_then(|s| s.id.as_deref()))
            .await;
        if let Logout::FrontChannel = kind {
            let mut denied = Denied::status(StatusCode::OK);
            denied
                .headers
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            for cookie in cookies {
                denied.headers.append(SET_COOKIE, cookie);
            }
            return Decision::Deny(denied);
        }
        let end_session = snapshot
            .as_ref()
            .and_then(|s| s.metadata.end_session_endpoint.clone());
        let Some(end_session) = end_session else {
            return redirect(&self.after_logout_url, cookies);
        };
        let id_token = session.as_ref().map_or("", |s| s.tokens.id_token.as_str());
        let mut params = vec![
            ("client_id", self.client_id.as_str()),
            ("post_logout_redirect_uri", self.after_logout_url.as_str()),
        ];
        if !id_token.is_empty() {
            params.insert(0, ("id_token_hint", id_token));
        }
        match self.end_session_method {
            EndSessionMethod::GetMethod => {
                redirect(&with_query(&end_session.to_string(), params), cookies)
            }
            EndSessionMethod::PostMethod => {
                if let Err(error) = self
                    .idp
                    .post_form(&end_session, &ClientAuth::None, &params, &[])
                    .await
                {
                    tracing::warn!(%error, "OIDC end session call failed");
                }
                redirect(&self.after_logout_url, cookies)
            }
        }
    }

    /// Revokes the refresh and access tokens (RFC 7009), best effort.
    async fn revoke(&self, snapshot: &Snapshot, tokens: &Tokens) {
        let Some(endpoint) = &snapshot.metadata.revocation_endpoint else {
            return;
        };
        for (token, hint) in [
            (&tokens.refresh_token, "refresh_token"),
            (&tokens.access_token, "access_token"),
        ] {
            if token.is_empty() {
                continue;
            }
            let params = [("token", token.as_str()), ("token_type_hint", hint)];
            match self
                .idp
                .post_form(endpoint, &snapshot.metadata.client_auth, &params, &[])
                .await
            {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => {
                    tracing::warn!(status = %response.status(), hint, "OIDC token revocation refused")
                }
                Err(error) => tracing::warn!(%error, hint, "OIDC token revocation failed"),
            }
        }
    }
}

/// Copies `claims` to `upstream` (appending to the request's own values when asked).
fn copy_claims(
    upstream: &mut HeaderMap,
    request: &HeaderMap,
    list: &[ClaimHeader],
    claims: &Claims,
) {
    for mapping in list {
        let Some(value) = claims.payload.get(&mapping.claim).and_then(claim_value) else {
            continue;
        };
        if mapping.append {
            if !upstream.contains_key(&mapping.header) {
                for existing in request.get_all(&mapping.header) {
                    upstream.append(mapping.header.clone(), existing.clone());
                }
            }
            upstream.append(mapping.header.clone(), value);
        } else {
            upstream.insert(mapping.header.clone(), value);
        }
    }
}

impl Authorize for OidcAuthorizationCode {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(self.inner.check(request))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn build(extra: Value) -> Result<OidcAuthorizationCode, OidcConfigError> {
        let mut config = json!({
            "clientId": "app", "issuerUrl": "http://idp.test", "appUrl": "https://app.example",
            "callbackPath": "/callback",
        });
        if let (Value::Object(config), Value::Object(extra)) = (&mut config, extra) {
            config.extend(extra);
        }
        OidcAuthorizationCode::new(OidcAuthorizationCodeConfig::from_value(config)?)
    }

    #[test]
    fn config_errors_name_their_field() {
        let cases = [
            (json!({"clientId": ""}), "clientId"),
            (json!({"appUrl": "app.example"}), "appUrl"),
            (json!({"callbackPath": ""}), "callbackPath"),
            (json!({"callbackPath": "callback"}), "callbackPath"),
            (
                json!({"callbackPath": "/cb(", "parseCallbackPathAsRegex": true}),
                "callbackPath",
            ),
            (json!({"logoutPath": "logout"}), "logoutPath"),
            (
                json!({"frontChannelLogout": {"path": "x"}}),
                "frontChannelLogout.path",
            ),
            (json!({"afterLogoutUrl": "bye"}), "afterLogoutUrl"),
            (
                json!({"headers": {"idTokenHeader": "bad header"}}),
                "headers.idTokenHeader",
            ),
            (
                json!({"identityToken": {"claimsToHeaders": [{"claim": "sub", "header": "x"}, {"claim": "sub"}]}}),
                "identityToken.claimsToHeaders[1].header",
            ),
            (
                json!({"accessToken": {"claimsToHeaders": [{"header": "x"}]}}),
                "accessToken.claimsToHeaders[0].claim",
            ),
            (
                json!({"userSession": {"cookie": {}, "redis": {"options": {"host": "r:6379"}}}}),
                "userSession",
            ),
            (
                json!({"userSession": {"cipherConfig": {"key": "short"}}}),
                "userSession.cipherConfig.key",
            ),
            (
                json!({"userSession": {"cookieOptions": {"notSecure": true, "sameSite": "NoneMode"}}}),
                "userSession.cookieOptions.sameSite",
            ),
            (
                json!({"userSession": {"redis": {}}}),
                "userSession.redis.options.host",
            ),
            (
                json!({"userSession": {"redis": {"options": {"host": "r:6379", "socketType": "TLS"}}}}),
                "userSession.redis.options.socketType",
            ),
            (
                json!({"userSession": {"redis": {"options": {"host": "user@r:6379"}}}}),
                "userSession.redis.options.host",
            ),
            (
                json!({"userSession": {"redis": {"options": {"host": "r:6379"}, "headerName": "a b"}}}),
                "userSession.redis.headerName",
            ),
            (
                json!({"session": {"cipherConfig": {"keyRef": {"name": "k", "namespace": "ns"}}}}),
                "session.cipherConfig.keyRef",
            ),
            (
                json!({"session": {"redis": {}}}),
                "session.redis.options.host",
            ),
            (json!({"azure": {"clientId": "x"}}), "azure"),
            (
                json!({"pkJwtClientAuthenticationConfig": {"signingKey": "k"}}),
                "pkJwtClientAuthenticationConfig",
            ),
            (
                json!({"autoMapFromMetadata": {"namespace": "n"}}),
                "autoMapFromMetadata",
            ),
            (
                json!({"dynamicMetadataFromClaims": {"issuer": "iss"}}),
                "dynamicMetadataFromClaims",
            ),
            (
                json!({"sessionIdHeaderName": "bad header"}),
                "sessionIdHeaderName",
            ),
        ];
        for (extra, field) in cases {
            let err = build(extra.clone()).expect_err(&extra.to_string());
            assert_eq!(err.field(), field, "{extra}: {err}");
        }
        let err = OidcAuthorizationCode::builder(
            OidcAuthorizationCodeConfig::from_value(json!({
                "clientId": "app", "issuerUrl": "http://idp.test", "appUrl": "https://app.example",
                "callbackPath": "/callback"}))
            .expect("config"),
        )
        .flow_key(vec![0u8; 16])
        .build()
        .unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
    }

    #[test]
    fn paths_and_defaults() {
        let step = build(
            json!({"callbackPath": "/cb(/[a-z]+)?", "parseCallbackPathAsRegex": true,
                                "appUrl": "https://app.example/base/", "afterLogoutUrl": "/bye"}),
        )
        .expect("builds");
        let inner = &step.inner;
        assert!(inner.is_callback("/cb") && inner.is_callback("/cb/x"));
        assert!(!inner.is_callback("/cb/x/y") && !inner.is_callback("/other/cb"));
        assert_eq!(inner.redirect_uri, "https://app.example/base/cb(/[a-z]+)?");
        assert_eq!(inner.after_logout_url, "https://app.example/bye");
        assert_eq!(inner.scope, "openid");
        assert!(
            !inner.allow_refreshing,
            "cookie sessions do not refresh by default"
        );
        assert_eq!(inner.flow_cookie, "oidc_state");

        let step = build(
            json!({"scopes": ["email", "openid", "email"], "userSession": {
            "cookie": {"keyPrefix": "p"}}}),
        )
        .expect("builds");
        assert_eq!(step.inner.scope, "openid email");
        assert_eq!(step.inner.flow_cookie, "p_oidc_state");
        assert_eq!(step.inner.after_logout_url, "https://app.example");
    }

    #[cfg(feature = "extauth-oidc-redis")]
    #[test]
    fn redis_sessions_refresh_by_default() {
        let step =
            build(json!({"userSession": {"redis": {"options": {"host": "127.0.0.1:6379"}}}}))
                .expect("builds");
        assert!(step.inner.allow_refreshing);
        assert_eq!(step.inner.pre_expiry_buffer, 2);
        assert_eq!(step.inner.flow_cookie, "__session_oidc_state");
    }
}
