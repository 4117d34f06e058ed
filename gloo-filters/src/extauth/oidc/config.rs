//! Gloo's translated `ExtAuthConfig.OidcAuthorizationCodeConfig` (`extauth-internal.proto`)
//! as serde types, in protobuf's JSON mapping: camelCase names, unknown fields refused,
//! wrapper types (`BoolValue`, `UInt32Value`, `StringValue`) as optional plain values, enums
//! by name or number, `Duration`s as `"1.5s"`.
//!
//! Secrets arrive resolved, as the ext auth server receives them: `clientSecret` and
//! `userSession.cipherConfig.key` are the values, not references. The public CRD's
//! `disableClientSecret` does not exist here: Gloo translates it to an empty `clientSecret`.
//!
//! Fields the step does not implement (`azure`, `pkJwtClientAuthenticationConfig`,
//! `autoMapFromMetadata`, `dynamicMetadataFromClaims`, a Redis `TLS` socket) parse, and
//! building the step from them fails with an error naming the field rather than running
//! without them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::error::OidcConfigError;

/// Gloo's `ExtAuthConfig.OidcAuthorizationCodeConfig`: one OIDC authorization-code step.
///
/// ```
/// use gloo_filters::extauth::oidc::OidcAuthorizationCodeConfig;
///
/// let config = OidcAuthorizationCodeConfig::from_json(r#"{
///     "clientId": "gloo",
///     "clientSecret": "s3cr3t",
///     "issuerUrl": "https://idp.example/",
///     "appUrl": "https://app.example",
///     "callbackPath": "/callback",
///     "scopes": ["email"],
///     "userSession": {"cookieOptions": {"maxAge": 3600}, "cookie": {"keyPrefix": "app"}}
/// }"#)?;
/// assert_eq!(config.client_id, "gloo");
///
/// let typo = OidcAuthorizationCodeConfig::from_json(r#"{"userSession": {"cookieOptions": {"maxAg": 1}}}"#)
///     .unwrap_err();
/// assert_eq!(typo.field(), "userSession.cookieOptions.maxAg");
/// assert!(typo.message().starts_with("unknown field `maxAg`, expected one of `maxAge`"));
/// # Ok::<(), gloo_filters::extauth::oidc::OidcConfigError>(())
/// ```
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct OidcAuthorizationCodeConfig {
    /// The client id registered with the issuer. Required.
    pub client_id: String,
    /// The client secret, resolved. Empty: a public client (no client authentication; PKCE
    /// still binds the code to this flow), which is what Gloo's `disableClientSecret` becomes.
    pub client_secret: String,
    /// The issuer; discovery is read from `<issuerUrl>/.well-known/openid-configuration`.
    pub issuer_url: String,
    /// Extra query parameters of the authorization request (after the standard ones; one
    /// with a standard name replaces it). A `code_challenge` here means PKCE is managed by the
    /// config (Gloo's documented way), and the step adds no challenge or verifier of its own.
    pub auth_endpoint_query_params: BTreeMap<String, String>,
    /// Extra parameters of the token request (sent in its form body, next to `code` and
    /// `code_verifier`).
    pub token_endpoint_query_params: BTreeMap<String, String>,
    /// The application's public URL; with `callbackPath` it makes the `redirect_uri`, and it
    /// is where a callback without a known original URL ends up.
    pub app_url: String,
    /// The callback path (relative to `appUrl`) the identity provider redirects back to.
    pub callback_path: String,
    /// A path that logs the user out; empty: no logout.
    pub logout_path: String,
    /// Where logout redirects to; empty: `appUrl`.
    pub after_logout_url: String,
    /// Scopes requested besides `openid`.
    pub scopes: Vec<String>,
    /// Deprecated form of [`user_session`](Self::user_session) (its `cipherConfig` holds an
    /// unresolved secret reference); used only when `userSession` is absent.
    pub session: Option<UserSession>,
    /// Headers carrying the tokens upstream.
    pub headers: Option<HeaderConfiguration>,
    /// Values replacing what discovery returns.
    pub discovery_override: Option<DiscoveryOverride>,
    /// How often discovery (and the JWKS) is read again; default 30 minutes.
    #[serde(deserialize_with = "proto_duration")]
    pub discovery_poll_interval: Option<Duration>,
    /// What to do with an ID token signed by a key the cached JWKS lacks.
    pub jwks_cache_refresh_policy: Option<JwksOnDemandCacheRefreshPolicy>,
    /// Deprecated: a header that carries the Redis session id on the code exchange (prefer
    /// `userSession.redis.headerName`).
    pub session_id_header_name: String,
    /// Treat `callbackPath` as a regular expression matched against the whole request path.
    pub parse_callback_path_as_regex: bool,
    /// Query parameters from dynamic metadata. Not supported (refused when set).
    pub auto_map_from_metadata: Option<AutoMapFromMetadata>,
    /// How the end session endpoint is called on logout.
    pub end_session_properties: Option<EndSessionProperties>,
    /// The user session: cookies or Redis, and their cookie options.
    pub user_session: Option<UserSessionConfig>,
    /// Private key JWT client authentication. Not supported (refused when set).
    pub pk_jwt_client_authentication_config: Option<PkJwtClientAuthenticationConfig>,
    /// Claims of the access token (when it is a JWT) copied to upstream headers.
    pub access_token: Option<TokenClaimsToHeaders>,
    /// Claims of the ID token copied to upstream headers.
    pub identity_token: Option<TokenClaimsToHeaders>,
    /// The default provider behaviour (the `Provider` oneof).
    pub default: Option<Empty>,
    /// Microsoft Entra ID distributed claims. Not supported (refused when set).
    pub azure: Option<Azure>,
    /// A path the identity provider loads to end this application's session.
    pub front_channel_logout: Option<FrontChannelLogout>,
    /// Claims to dynamic metadata. Not supported (refused when set: an auth step here has no
    /// dynamic metadata to fill).
    pub dynamic_metadata_from_claims: BTreeMap<String, String>,
}

impl OidcAuthorizationCodeConfig {
    /// Parses the JSON form; an error names the field path (`userSession.redis.options`).
    pub fn from_json(json: &str) -> Result<Self, OidcConfigError> {
        let mut de = serde_json::Deserializer::from_str(json);
        Self::deserialize_named(&mut de)
    }

    /// Reads a parsed JSON value; an error names the field path.
    pub fn from_value(value: serde_json::Value) -> Result<Self, OidcConfigError> {
        Self::deserialize_named(value)
    }

    fn deserialize_named<'de, D: Deserializer<'de>>(de: D) -> Result<Self, OidcConfigError> {
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            OidcConfigError::new(field, e.into_inner().to_string())
        })
    }
}

impl fmt::Debug for OidcAuthorizationCodeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = if self.client_secret.is_empty() {
            ""
        } else {
            "<redacted>"
        };
        f.debug_struct("OidcAuthorizationCodeConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &secret)
            .field("issuer_url", &self.issuer_url)
            .field(
                "auth_endpoint_query_params",
                &self.auth_endpoint_query_params,
            )
            .field(
                "token_endpoint_query_params",
                &self.token_endpoint_query_params,
            )
            .field("app_url", &self.app_url)
            .field("callback_path", &self.callback_path)
            .field("logout_path", &self.logout_path)
            .field("after_logout_url", &self.after_logout_url)
            .field("scopes", &self.scopes)
            .field("session", &self.session)
            .field("headers", &self.headers)
            .field("discovery_override", &self.discovery_override)
            .field("discovery_poll_interval", &self.discovery_poll_interval)
            .field("jwks_cache_refresh_policy", &self.jwks_cache_refresh_policy)
            .field("session_id_header_name", &self.session_id_header_name)
            .field(
                "parse_callback_path_as_regex",
                &self.parse_callback_path_as_regex,
            )
            .field("auto_map_from_metadata", &self.auto_map_from_metadata)
            .field("end_session_properties", &self.end_session_properties)
            .field("user_session", &self.user_session)
            .field(
                "pk_jwt_client_authentication_config",
                &self.pk_jwt_client_authentication_config,
            )
            .field("access_token", &self.access_token)
            .field("identity_token", &self.identity_token)
            .field("default", &self.default)
            .field("azure", &self.azure)
            .field("front_channel_logout", &self.front_channel_logout)
            .field(
                "dynamic_metadata_from_claims",
                &self.dynamic_metadata_from_claims,
            )
            .finish()
    }
}

/// `google.protobuf.Empty`: `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Gloo's `UserSessionConfig`: where the tokens live between requests.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UserSessionConfig {
    /// Refuse the request (instead of starting a new login) when the session store fails.
    pub fail_on_fetch_failure: bool,
    /// `Set-Cookie` options.
    pub cookie_options: Option<CookieOptions>,
    /// Tokens in cookies (the default when neither is set).
    pub cookie: Option<InternalSession>,
    /// Tokens in Redis, a random session id in the cookie.
    pub redis: Option<RedisSession>,
    /// Encrypts the cookie values (cookie sessions only).
    pub cipher_config: Option<CipherConfig>,
}

/// The deprecated `UserSession` (the public CRD's form): as [`UserSessionConfig`], with the
/// cipher key as a secret reference, which the translated config cannot use.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct UserSession {
    /// See [`UserSessionConfig::fail_on_fetch_failure`].
    pub fail_on_fetch_failure: bool,
    /// See [`UserSessionConfig::cookie_options`].
    pub cookie_options: Option<CookieOptions>,
    /// See [`UserSessionConfig::cookie`].
    pub cookie: Option<InternalSession>,
    /// See [`UserSessionConfig::redis`].
    pub redis: Option<RedisSession>,
    /// A reference to the key; refused (translation resolves it into `userSession`).
    pub cipher_config: Option<CipherConfigRef>,
}

/// `UserSession.CipherConfig` of the public CRD: a secret reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CipherConfigRef {
    /// The secret holding the key.
    pub key_ref: Option<ResourceRef>,
}

/// `core.solo.io.ResourceRef`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResourceRef {
    /// The resource name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

/// `UserSessionConfig.CipherConfig`: the resolved 32-byte key (AES-256-GCM).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CipherConfig {
    /// The key, exactly 32 bytes.
    pub key: String,
}

impl fmt::Debug for CipherConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CipherConfig")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// `UserSession.CookieOptions`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CookieOptions {
    /// `Max-Age` in seconds; unset: 30 days (2592000); 0: no `Max-Age` (a browser-session
    /// cookie).
    pub max_age: Option<u32>,
    /// Leave `Secure` off (testing only).
    pub not_secure: bool,
    /// `HttpOnly`; unset: true.
    pub http_only: Option<bool>,
    /// `Path`; unset: `/`; empty: no `Path` attribute.
    pub path: Option<String>,
    /// `SameSite`.
    pub same_site: SameSite,
    /// `Domain`; empty: none (host-only cookies).
    pub domain: String,
}

/// `CookieOptions.SameSite`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// No `SameSite` attribute (browsers treat it as `Lax`).
    #[default]
    DefaultMode,
    /// `SameSite=Lax`.
    LaxMode,
    /// `SameSite=Strict`.
    StrictMode,
    /// `SameSite=None` (needs `Secure`).
    NoneMode,
}

/// `UserSession.InternalSession`: the tokens in cookies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct InternalSession {
    /// Refresh an expired ID token with the refresh token; unset: false.
    pub allow_refreshing: Option<bool>,
    /// Cookie names become `<keyPrefix>_<name>`.
    pub key_prefix: String,
    /// Only serve hosts that domain-match this (RFC 6265 §5.1.3).
    pub target_domain: String,
}

/// `UserSession.RedisSession`: the tokens in Redis.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisSession {
    /// How to reach Redis.
    pub options: Option<RedisOptions>,
    /// Prefix of the Redis keys (`<keyPrefix><session id>`).
    pub key_prefix: String,
    /// The session cookie; empty: `__session`.
    pub cookie_name: String,
    /// Refresh an expiring ID token with the refresh token; unset: true.
    pub allow_refreshing: Option<bool>,
    /// Refresh this long before the ID token expires; unset: 2 s.
    #[serde(deserialize_with = "proto_duration")]
    pub pre_expiry_buffer: Option<Duration>,
    /// Only serve hosts that domain-match this (RFC 6265 §5.1.3).
    pub target_domain: String,
    /// A header carrying the session id on the code exchange.
    pub header_name: String,
}

/// Gloo's `RedisOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RedisOptions {
    /// `host:port`, or `unix:///path/to/socket`.
    pub host: String,
    /// The database number.
    pub db: i32,
    /// Pool size (unused: one multiplexed connection serves all requests).
    pub pool_size: i32,
    /// TLS certificates. Not supported (refused when set).
    pub tls_cert_mount_path: String,
    /// TCP (default) or TLS (refused: not supported).
    pub socket_type: SocketType,
}

/// `RedisOptions.SocketType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SocketType {
    /// Plain TCP.
    #[default]
    Tcp,
    /// TLS.
    Tls,
}

/// Gloo's `HeaderConfiguration`: the tokens sent upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct HeaderConfiguration {
    /// Sends the ID token upstream in this header.
    pub id_token_header: String,
    /// Sends the access token upstream in this header.
    pub access_token_header: String,
    /// `Bearer ` before a token sent in an `Authorization` header.
    pub use_bearer_schema_for_authorization: Option<bool>,
}

/// Gloo's `DiscoveryOverride`: non-empty fields replace the discovered values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct DiscoveryOverride {
    /// `authorization_endpoint`.
    pub auth_endpoint: String,
    /// `token_endpoint`.
    pub token_endpoint: String,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// `scopes_supported` (informational).
    pub scopes: Vec<String>,
    /// `response_types_supported` (informational).
    pub response_types: Vec<String>,
    /// `subject_types_supported` (informational).
    pub subjects: Vec<String>,
    /// `id_token_signing_alg_values_supported`: ID tokens must use one of these.
    pub id_token_algs: Vec<String>,
    /// `token_endpoint_auth_methods_supported`: picks `client_secret_basic` or `_post`.
    pub auth_methods: Vec<String>,
    /// `claims_supported` (informational).
    pub claims: Vec<String>,
    /// `revocation_endpoint`.
    pub revocation_endpoint: String,
    /// `end_session_endpoint`.
    pub end_session_endpoint: String,
}

/// Gloo's `JwksOnDemandCacheRefreshPolicy` (a oneof; unset: `never`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct JwksOnDemandCacheRefreshPolicy {
    /// Never fetch the JWKS for an unknown key: the token is refused.
    pub never: Option<Empty>,
    /// Fetch the JWKS for every unknown key.
    pub always: Option<Empty>,
    /// Fetch the JWKS for unknown keys at most this many times per poll interval.
    pub max_idp_req_per_polling_interval: Option<u32>,
}

/// Gloo's `AutoMapFromMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct AutoMapFromMetadata {
    /// The metadata namespace.
    pub namespace: String,
}

/// Gloo's `EndSessionProperties`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct EndSessionProperties {
    /// How the end session endpoint is called (the proto spells it `methodType`).
    #[serde(rename = "methodType")]
    pub method_type: EndSessionMethod,
}

/// `EndSessionProperties.MethodType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndSessionMethod {
    /// The browser is redirected to the endpoint (RP-initiated logout).
    #[default]
    GetMethod,
    /// The step POSTs to the endpoint itself, then redirects to `afterLogoutUrl`.
    PostMethod,
}

/// `ExtAuthConfig.OidcAuthorizationCodeConfig.PkJwtClientAuthenticationConfig`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PkJwtClientAuthenticationConfig {
    /// The signing key.
    pub signing_key: String,
    /// The assertion's lifetime.
    #[serde(deserialize_with = "proto_duration")]
    pub valid_for: Option<Duration>,
}

impl fmt::Debug for PkJwtClientAuthenticationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkJwtClientAuthenticationConfig")
            .field("valid_for", &self.valid_for)
            .finish_non_exhaustive()
    }
}

/// `AccessToken` / `IdentityToken`: claims copied to headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct TokenClaimsToHeaders {
    /// The claims and their headers.
    pub claims_to_headers: Vec<ClaimToHeader>,
}

/// Gloo's `ClaimToHeader`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ClaimToHeader {
    /// The claim (`sub`).
    pub claim: String,
    /// The header (`x-sub`).
    pub header: String,
    /// Append to the request's existing values instead of replacing them.
    pub append: bool,
}

/// Gloo's `ExtAuthConfig.Azure`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Azure {
    /// The ExtAuthService app's client id.
    pub client_id: String,
    /// Its tenant.
    pub tenant_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Redis for caching claims.
    pub claims_caching_options: Option<RedisOptions>,
}

impl fmt::Debug for Azure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Azure")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

/// `FrontChannelLogout`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct FrontChannelLogout {
    /// The path (relative to `appUrl`) the identity provider loads.
    pub path: String,
}

/// A protobuf enum in JSON: its value name or its number.
fn proto_enum<'de, D, T>(
    deserializer: D,
    type_name: &'static str,
    values: &'static [(&'static str, T)],
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Copy + 'static,
{
    struct EnumVisitor<T: 'static> {
        type_name: &'static str,
        values: &'static [(&'static str, T)],
    }
    impl<T: Copy> Visitor<'_> for EnumVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a {} name or number", self.type_name)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            self.values
                .iter()
                .find(|(name, _)| *name == v)
                .map(|(_, value)| *value)
                .ok_or_else(|| {
                    let names: Vec<&str> = self.values.iter().map(|(n, _)| *n).collect();
                    E::custom(format_args!(
                        "unknown {} `{v}`, expected one of {}",
                        self.type_name,
                        names.join(", ")
                    ))
                })
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            usize::try_from(v)
                .ok()
                .and_then(|i| self.values.get(i))
                .map(|(_, value)| *value)
                .ok_or_else(|| E::custom(format_args!("unknown {} number {v}", self.type_name)))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(v) => self.visit_u64(v),
                Err(_) => Err(E::custom(format_args!(
                    "unknown {} number {v}",
                    self.type_name
                ))),
            }
        }
    }
    deserializer.deserialize_any(EnumVisitor { type_name, values })
}

impl<'de> Deserialize<'de> for SameSite {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const VALUES: &[(&str, SameSite)] = &[
            ("DefaultMode", SameSite::DefaultMode),
            ("LaxMode", SameSite::LaxMode),
            ("StrictMode", SameSite::StrictMode),
            ("NoneMode", SameSite::NoneMode),
        ];
        proto_enum(deserializer, "SameSite", VALUES)
    }
}

impl<'de> Deserialize<'de> for SocketType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const VALUES: &[(&str, SocketType)] = &[("TCP", SocketType::Tcp), ("TLS", SocketType::Tls)];
        proto_enum(deserializer, "SocketType", VALUES)
    }
}

impl<'de> Deserialize<'de> for EndSessionMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const VALUES: &[(&str, EndSessionMethod)] = &[
            ("GetMethod", EndSessionMethod::GetMethod),
            ("PostMethod", EndSessionMethod::PostMethod),
        ];
        proto_enum(deserializer, "MethodType", VALUES)
    }
}

/// An optional `google.protobuf.Duration` in its JSON form: `"<seconds>[.<fraction>]s"`,
/// not negative.
fn proto_duration<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    parse_proto_duration(&text)
        .map(Some)
        .map_err(de::Error::custom)
}

/// Parses `"1.5s"`; negative durations are refused (none of these fields allows one).
fn parse_proto_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("invalid duration {text:?}: expected seconds with an `s` suffix, like \"1.5s\"");
    let body = text.trim().strip_suffix('s').ok_or_else(invalid)?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 9
    {
        return Err(invalid());
    }
    let seconds: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().map_err(|_| invalid())?
    };
    Ok(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_protobuf_json() {
        assert_eq!(parse_proto_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(
            parse_proto_duration("0.25s"),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_proto_duration(".5s"), Ok(Duration::from_millis(500)));
        for bad in ["", "s", "5", "5m", "-1s", "1.2.3s", "1.0000000001s", "x s"] {
            assert!(parse_proto_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_field_of_the_translated_config_parses() {
        let config = OidcAuthorizationCodeConfig::from_json(
            r#"{
                "clientId": "c", "clientSecret": "s", "issuerUrl": "http://idp",
                "authEndpointQueryParams": {"a": "1"}, "tokenEndpointQueryParams": {"b": "2"},
                "appUrl": "https://app", "callbackPath": "/cb", "logoutPath": "/logout",
                "afterLogoutUrl": "https://app/bye", "scopes": ["email"],
                "headers": {"idTokenHeader": "x-id", "accessTokenHeader": "authorization",
                            "useBearerSchemaForAuthorization": true},
                "discoveryOverride": {"authEndpoint": "http://idp/a", "tokenEndpoint": "http://idp/t",
                    "jwksUri": "http://idp/k", "scopes": [], "responseTypes": ["code"], "subjects": [],
                    "idTokenAlgs": ["RS256"], "authMethods": ["client_secret_post"], "claims": [],
                    "revocationEndpoint": "http://idp/r", "endSessionEndpoint": "http://idp/e"},
                "discoveryPollInterval": "60s",
                "jwksCacheRefreshPolicy": {"maxIdpReqPerPollingInterval": 3},
                "sessionIdHeaderName": "x-session", "parseCallbackPathAsRegex": true,
                "endSessionProperties": {"methodType": "PostMethod"},
                "userSession": {"failOnFetchFailure": true,
                    "cookieOptions": {"maxAge": 0, "notSecure": true, "httpOnly": false, "path": "",
                                      "sameSite": "StrictMode", "domain": "app"},
                    "redis": {"options": {"host": "127.0.0.1:6379", "db": 2, "poolSize": 5, "socketType": "TCP"},
                              "keyPrefix": "p", "cookieName": "sid", "allowRefreshing": false,
                              "preExpiryBuffer": "10s", "targetDomain": "app", "headerName": "x-sid"},
                    "cipherConfig": {"key": "0123456789abcdef0123456789abcdef"}},
                "accessToken": {"claimsToHeaders": [{"claim": "scope", "header": "x-scope", "append": true}]},
                "identityToken": {"claimsToHeaders": [{"claim": "sub", "header": "x-sub"}]},
                "default": {},
                "frontChannelLogout": {"path": "/fcl"}
            }"#,
        )
        .expect("parses");
        let session = config.user_session.as_ref().expect("session");
        assert_eq!(
            session.cookie_options.as_ref().map(|c| c.same_site),
            Some(SameSite::StrictMode)
        );
        let redis = session.redis.as_ref().expect("redis");
        assert_eq!(redis.pre_expiry_buffer, Some(Duration::from_secs(10)));
        assert_eq!(
            config.end_session_properties.map(|p| p.method_type),
            Some(EndSessionMethod::PostMethod)
        );
        assert_eq!(
            config.discovery_poll_interval,
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn enums_read_names_and_numbers() {
        let options: CookieOptions = serde_json::from_str(r#"{"sameSite": 3}"#).expect("number");
        assert_eq!(options.same_site, SameSite::NoneMode);
        let err = serde_json::from_str::<CookieOptions>(r#"{"sameSite": "Lax"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown SameSite `Lax`"), "{err}");
        assert!(serde_json::from_str::<CookieOptions>(r#"{"sameSite": 4}"#).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let err = OidcAuthorizationCodeConfig::from_json(
            r#"{"userSession": {"redis": {"preExpiryBuffer": "2 seconds"}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.field(), "userSession.redis.preExpiryBuffer");
        assert!(err.to_string().contains("invalid duration"), "{err}");
        let err = OidcAuthorizationCodeConfig::from_json(r#"{"clientID": "x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `clientID`"),
            "{err}"
        );
        // Secrets never reach Debug output.
        let config = OidcAuthorizationCodeConfig::from_json(
            r#"{"clientSecret": "client-pass", "userSession": {"cipherConfig": {"key": "top-secret-key"}}}"#,
        )
        .expect("parses");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("top-secret-key") && !debug.contains("client-pass"),
            "{debug}"
        );
    }
}
