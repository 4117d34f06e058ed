//! Gloo's OAuth2 access token validation (`oauth2.accessTokenValidationConfig`): JWT access
//! tokens checked against a key set, or opaque tokens checked by RFC 7662 introspection;
//! optionally the OIDC userinfo endpoint, required scopes and claims copied to headers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::client::AuthHttpClient;
use super::config::{self, ClaimToHeader};
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use crate::jwt::jwks::Jwks;
use crate::jwt::remote::{Lookup, RemoteCache};
use crate::jwt::token::Jwt;
use crate::jwt::{JwksFetcher, JwksRequest};

/// Gloo's default `cacheTimeout`: 10 minutes.
pub const DEFAULT_CACHE_TIMEOUT: Duration = Duration::from_secs(600);
/// Gloo's default JWKS `refreshInterval`: 5 minutes.
pub const DEFAULT_JWKS_REFRESH: Duration = Duration::from_secs(300);
/// The leeway on `exp`, `nbf` and `iat` of JWT access tokens.
const CLOCK_SKEW: u64 = 60;
/// The most tokens whose introspection / userinfo answers are cached at once.
const MAX_CACHED_TOKENS: usize = 10_000;

type Claims = Arc<Map<String, Value>>;

/// Where the keys of JWT access tokens come from.
enum Keys {
    /// An inline set (`None`: it has no usable key, so no token verifies).
    Local(Option<Arc<Jwks>>),
    Remote(Arc<RemoteCache>),
}

struct JwtCheck {
    keys: Keys,
    issuer: String,
    audiences: Vec<String>,
}

struct Introspection {
    url: Uri,
    client_id: String,
    client_secret: String,
    user_id_attribute: String,
}

enum Validator {
    Jwt(JwtCheck),
    Introspection(Introspection),
}

/// Answers cached per token until their expiry.
#[derive(Default)]
struct TokenCache {
    entries: Mutex<HashMap<String, (Instant, Claims)>>,
}

impl TokenCache {
    fn get(&self, token: &str, now: Instant) -> Option<Claims> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(token)
            .filter(|(expires, _)| now < *expires)
            .map(|(_, claims)| Arc::clone(claims))
    }

    fn put(&self, token: &str, expires: Instant, claims: Claims, now: Instant) {
        if expires <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_CACHED_TOKENS {
            entries.retain(|_, (at, _)| now < *at);
            if entries.len() >= MAX_CACHED_TOKENS {
                return;
            }
        }
        entries.insert(token.to_owned(), (expires, claims));
    }
}

/// Gloo's access token validation step.
///
/// The token is the `Authorization: Bearer <token>` of the request. A request without one,
/// with a token that does not validate, that lacks a required scope, whose introspection
/// answer lacks the configured user id attribute, or whose userinfo call fails is refused
/// with a bare `403`, as Gloo answers. A valid token lets the request through with the
/// configured claims as upstream headers and, for introspection with
/// `userIdAttributeName`, that attribute as user id.
///
/// * **JWT**: the token must have `kid` and `alg` headers; only keys with a `kid` (and a `use`
///   of `sig`, or none) are tried, and one whose `kid` matches must verify it. `exp`, `nbf`
///   and `iat` are checked when present (60 s leeway), then `iss` against `issuer` and `aud`
///   against `audiences` when configured. Remote key sets are cached for
///   `refreshInterval` (5 minutes by default) and refetched early (at most every 30 s) when a
///   token names an unknown `kid`.
/// * **Introspection** (RFC 7662): `POST` of `token=<token>` as a form to the endpoint, with
///   the client id and secret in HTTP Basic auth (both form-urlencoded first, RFC 6749
///   §2.3.1), or the client id alone as a form field when there is no secret. A `200` answer
///   with `"active": true` validates the token; it is cached for `cacheTimeout` (10 minutes
///   by default, none when zero) or until its `exp`, whichever comes first.
/// * **Userinfo**: when configured, a `GET` with the token as bearer must answer `200`
///   with a JSON object (cached likewise).
/// * **Scopes**: every required scope must be in the space-separated `scope` claim (or
///   introspection member).
pub struct AccessTokenValidation {
    validator: Validator,
    userinfo: Option<Uri>,
    cache_timeout: Duration,
    required_scopes: Vec<String>,
    claims_to_headers: Vec<(String, HeaderName, bool)>,
    http: Arc<dyn AuthHttpClient>,
    call_timeout: Duration,
    introspected: TokenCache,
    userinfo_cache: TokenCache,
}

impl std::fmt::Debug for AccessTokenValidation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.validator {
            Validator::Jwt(_) => "jwt",
            Validator::Introspection(_) => "introspection",
        };
        f.debug_struct("AccessTokenValidation")
            .field("validation", &kind)
            .field("required_scopes", &self.required_scopes)
            .finish_non_exhaustive()
    }
}

fn parse_url(path: &str, url: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| ConfigError::new(path, format!("{url:?} is not a URL: {e}")))?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(ConfigError::new(
            path,
            format!("{url:?} is not an absolute URL"),
        ));
    }
    Ok(uri)
}

impl AccessTokenValidation {
    /// Builds Gloo's `accessTokenValidationConfig` at `path`.
    pub(crate) fn from_config(
        path: &str,
        config: &config::AccessTokenValidationConfig,
        http: Arc<dyn AuthHttpClient>,
        call_timeout: Duration,
        jwks_fetcher: Arc<dyn JwksFetcher>,
    ) -> Result<Self, ConfigError> {
        if config.azure.is_some() {
            return Err(ConfigError::new(
                format!("{path}.azure"),
                "Microsoft Entra ID distributed claims are not supported",
            ));
        }
        let validator = match (
            &config.introspection_url,
            &config.jwt,
            &config.introspection,
        ) {
            (Some(url), None, None) => Validator::Introspection(Introspection {
                url: parse_url(&format!("{path}.introspectionUrl"), url)?,
                client_id: String::new(),
                client_secret: String::new(),
                user_id_attribute: String::new(),
            }),
            (None, None, Some(i)) => Validator::Introspection(Introspection {
                url: parse_url(
                    &format!("{path}.introspection.introspectionUrl"),
                    &i.introspection_url,
                )?,
                client_id: i.client_id.clone(),
                client_secret: i.client_secret.clone(),
                user_id_attribute: i.user_id_attribute_name.clone(),
            }),
            (None, Some(jwt), None) => {
                Validator::Jwt(jwt_check(&format!("{path}.jwt"), jwt, jwks_fetcher)?)
            }
            (None, None, None) => {
                return Err(ConfigError::new(
                    path,
                    "one of `jwt`, `introspection` or `introspectionUrl` is required",
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    path,
                    "only one of `jwt`, `introspection` and `introspectionUrl` may be set",
                ))
            }
        };
        if let Validator::Introspection(i) = &validator {
            if i.client_id.is_empty() && !i.client_secret.is_empty() {
                return Err(ConfigError::new(
                    format!("{path}.introspection.clientId"),
                    "a client secret needs a client id",
                ));
            }
        }
        let userinfo = if config.userinfo_url.is_empty() {
            None
        } else {
            Some(parse_url(
                &format!("{path}.userinfoUrl"),
                &config.userinfo_url,
            )?)
        };
        let mut claims_to_headers = Vec::new();
        for (
            i,
            ClaimToHeader {
                claim,
                header,
                append,
            },
        ) in config.claims_to_headers.iter().enumerate()
        {
            let name = HeaderName::try_from(header.as_str()).map_err(|_| {
                ConfigError::new(
                    format!("{path}.claimsToHeaders[{i}].header"),
                    format!("{header:?} is not a header name"),
                )
            })?;
            claims_to_headers.push((claim.clone(), name, *append));
        }
        Ok(Self {
            validator,
            userinfo,
            cache_timeout: config.cache_timeout.map_or(DEFAULT_CACHE_TIMEOUT, |d| d.0),
            required_scopes: config
                .required_scopes
                .as_ref()
                .map(|s| s.scope.clone())
                .unwrap_or_default(),
            claims_to_headers,
            http,
            call_timeout,
            introspected: TokenCache::default(),
            userinfo_cache: TokenCache::default(),
        })
    }

    async fn validate(&self, request: &CheckRequest) -> Option<Allowed> {
        let token = bearer_token(request)?;
        let (claims, user_attribute) = match &self.validator {
            Validator::Jwt(check) => (check.verify(token).await?, None),
            Validator::Introspection(i) => {
                (self.introspect(i, token).await?, Some(&i.user_id_attribute))
            }
        };
        if !has_scopes(&claims, &self.required_scopes) {
            return None;
        }
        let mut allowed = Allowed::default();
        if let Some(attribute) = user_attribute.filter(|a| !a.is_empty()) {
            allowed.user_id = Some(claim_text(claims.get(attribute.as_str())?));
        }
        if let Some(url) = &self.userinfo {
            self.userinfo(url, token).await?;
        }
        for (claim, header, append) in &self.claims_to_headers {
            let Some(value) = claims.get(claim.as_str()) else {
                continue;
            };
            let mut text = claim_text(value);
            if *append {
                // Envoy appends to a request header by joining the values with `,`.
                let existing: Vec<&[u8]> = request
                    .headers
                    .get_all(header)
                    .iter()
                    .map(HeaderValue::as_bytes)
                    .collect();
                if !existing.is_empty() {
                    let joined = String::from_utf8_lossy(&existing.join(&b","[..])).into_owned();
                    text = format!("{joined},{text}");
                }
            }
            let Ok(value) = HeaderValue::try_from(text) else {
                continue;
            };
            allowed.upstream_headers.insert(header.clone(), value);
        }
        Some(allowed)
    }

    fn expiry(&self, claims: &Map<String, Value>, now: Instant) -> Instant {
        let mut ttl = self.cache_timeout;
        if let Some(exp) = claims.get("exp").and_then(Value::as_u64) {
            ttl = ttl.min(Duration::from_secs(exp.saturating_sub(unix_now())));
        }
        now.checked_add(ttl).unwrap_or(now)
    }

    async fn introspect(&self, endpoint: &Introspection, token: &str) -> Option<Claims> {
        let now = Instant::now();
        if let Some(claims) = self.introspected.get(token, now) {
            return Some(claims);
        }
        let request = introspection_request(endpoint, token)?;
        let claims = self.call_json(request).await?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return None;
        }
        let claims = Arc::new(claims);
        self.introspected
            .put(token, self.expiry(&claims, now), Arc::clone(&claims), now);
        Some(claims)
    }

    async fn userinfo(&self, url: &Uri, token: &str) -> Option<Claims> {
        let now = Instant::now();
        if let Some(claims) = self.userinfo_cache.get(token, now) {
            return Some(claims);
        }
        let request = Request::builder()
            .method(Method::GET)
            .uri(url.clone())
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/json")
            .body(Bytes::new())
            .ok()?;
        let claims = Arc::new(self.call_json(request).await?);
        let expires = now.checked_add(self.cache_timeout).unwrap_or(now);
        self.userinfo_cache
            .put(token, expires, Arc::clone(&claims), now);
        Some(claims)
    }

    /// A `200` answer's JSON object; anything else (and any failure) is `None`.
    async fn call_json(&self, request: Request<Bytes>) -> Option<Map<String, Value>> {
        let uri = request.uri().clone();
        let answer = tokio::time::timeout(self.call_timeout, self.http.send(request)).await;
        let Ok(answer) = answer else {
            tracing::warn!(%uri, timeout = ?self.call_timeout, "identity provider did not answer in time");
            return None;
        };
        match answer {
            Ok(response) if response.status() == StatusCode::OK => {
                match serde_json::from_slice::<Value>(response.body()) {
                    Ok(Value::Object(map)) => Some(map),
                    _ => {
                        tracing::warn!(%uri, "identity provider answered something other than a JSON object");
                        None
                    }
                }
            }
            Ok(response) => {
                tracing::debug!(%uri, status = %response.status(), "identity provider refused the token");
                None
            }
            Err(e) => {
                tracing::warn!(%uri, error = %e, "identity provider call failed");
                None
            }
        }
    }
}

impl Authorize for AccessTokenValidation {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            match self.validate(request).await {
                Some(allowed) => Decision::Allow(allowed),
                None => Decision::Deny(Denied::status(StatusCode::FORBIDDEN)),
            }
        })
    }
}

/// The RFC 7662 request for `token`.
fn introspection_request(endpoint: &Introspection, token: &str) -> Option<Request<Bytes>> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("token", token);
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(endpoint.url.clone())
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json");
    if !endpoint.client_secret.is_empty() {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(&endpoint.client_id),
            encode(&endpoint.client_secret)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
        builder = builder.header(AUTHORIZATION, format!("Basic {basic}"));
    } else if !endpoint.client_id.is_empty() {
        form.append_pair("client_id", &endpoint.client_id);
    }
    builder.body(Bytes::from(form.finish())).ok()
}

fn jwt_check(
    path: &str,
    config: &config::JwtValidation,
    fetcher: Arc<dyn JwksFetcher>,
) -> Result<JwtCheck, ConfigError> {
    let keys = match (&config.local_jwks, &config.remote_jwks) {
        (Some(local), None) => match Jwks::parse(local.inline_string.as_bytes()) {
            Ok(jwks) => Keys::Local(Some(Arc::new(jwks))),
            Err(e) => {
                return Err(ConfigError::new(
                    format!("{path}.localJwks.inlineString"),
                    e.to_string(),
                ))
            }
        },
        (None, Some(remote)) => {
            let uri = parse_url(&format!("{path}.remoteJwks.url"), &remote.url)?;
            let refresh = remote
                .refresh_interval
                .map_or(DEFAULT_JWKS_REFRESH, |d| d.0);
            let settings = crate::jwt::RemoteJwks::new(remote.url.clone()).cache_duration(refresh);
            let request = JwksRequest {
                provider: Arc::from(path),
                uri,
                cluster: None,
            };
            Keys::Remote(Arc::new(RemoteCache::new(request, &settings, fetcher)))
        }
        (None, None) => {
            return Err(ConfigError::new(
                path,
                "one of `localJwks` or `remoteJwks` is required",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                path,
                "only one of `localJwks` and `remoteJwks` may be set",
            ))
        }
    };
    Ok(JwtCheck {
        keys,
        issuer: config.issuer.clone(),
        audiences: config.audiences.clone(),
    })
}

impl JwtCheck {
    async fn keys(&self, kid: &str) -> Option<Arc<Jwks>> {
        let cache = match &self.keys {
            Keys::Local(jwks) => return jwks.clone(),
            Keys::Remote(cache) => cache,
        };
        let now = Instant::now();
        let seen = match cache.lookup(now, false) {
            Lookup::Fresh(jwks, generation) => {
                if jwks.has_kid(kid) || !cache.may_refetch_for_rotation(now) {
                    return Some(jwks);
                }
                generation
            }
            Lookup::Failed => return None,
            Lookup::Fetch(generation) => generation,
        };
        cache.refresh(seen).await;
        match cache.lookup(Instant::now(), true) {
            Lookup::Fresh(jwks, _) => Some(jwks),
            _ => None,
        }
    }

    async fn verify(&self, token: &str) -> Option<Claims> {
        let jwt = Jwt::parse(token).ok()?;
        if jwt.kid.is_empty() {
            return None;
        }
        let keys = self.keys(&jwt.kid).await?;
        keys.verify_with_kid(&jwt).ok()?;
        let now = unix_now();
        jwt.check_time(now, CLOCK_SKEW).ok()?;
        if jwt
            .payload
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > now.saturating_add(CLOCK_SKEW))
        {
            return None;
        }
        if !self.issuer.is_empty() && jwt.iss != self.issuer {
            return None;
        }
        if !self.audiences.is_empty() && !jwt.audiences.iter().any(|a| self.audiences.contains(a)) {
            return None;
        }
        Some(Arc::clone(&jwt.payload))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer_token(request: &CheckRequest) -> Option<&str> {
    let value = request.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn has_scopes(claims: &Map<String, Value>, required: &[String]) -> bool {
    if required.is_empty() {
        return true;
    }
    let granted: Vec<&str> = claims
        .get("scope")
        .and_then(Value::as_str)
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    required
        .iter()
        .all(|scope| granted.contains(&scope.as_str()))
}

/// A claim as header text: strings as they are, anything else as JSON.
fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
