//! Gloo's `ExtAuthConfig` (`enterprise.gloo.solo.io.ExtAuthConfig`, in
//! `projects/gloo/api/v1/enterprise/options/extauth/v1/extauth-internal.proto`): what Gloo's
//! control plane sends its ext auth server for one `AuthConfig`, with every secret already
//! resolved (API keys, client secrets, hashed passwords).
//!
//! The types read the proto3 JSON form, field for field: lowerCamelCase names, `oneof`s as
//! mutually exclusive fields, `google.protobuf.Duration` as `"1.5s"`, wrappers as plain values.
//! Unknown fields are errors that name the field and where it is
//! ([`ExtAuthConfig::from_json`]). Auth types Gloo has but this crate does not implement
//! (HMAC, plugins, portal, the legacy `oauth`, the JWT placeholder)
//! parse, and are refused when the config is built, naming the field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use serde_json::Value;

use super::error::ConfigError;

/// One `AuthConfig` as Gloo's ext auth server receives it.
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
///
/// let config = ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.basic-auth",
///     "configs": [{"basicAuth": {"realm": "gloo", "apr": {"users": {
///         "user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"}
///     }}}}]
/// }"#)?;
/// assert_eq!(config.auth_config_ref_name, "gloo-system.basic-auth");
///
/// let err = ExtAuthConfig::from_json(r#"{"configs": [{"basicAuth": {"relm": "x"}}]}"#)
///     .unwrap_err();
/// assert!(err.to_string().starts_with("configs[0].basicAuth.relm: unknown field `relm`"), "{err}");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuthConfig {
    /// The id requests name this config by (`<namespace>.<name>` of the `AuthConfig`); Envoy's
    /// route sends it as the `config_id` context extension.
    #[serde(default)]
    pub auth_config_ref_name: String,
    /// The auth steps, in order.
    #[serde(default)]
    pub configs: Vec<Config>,
    /// How the named steps combine (`basic || (apikey && !oidc)`); empty or absent: all of
    /// them, in order.
    #[serde(default)]
    pub boolean_expr: Option<String>,
    /// Answer `401` instead of passing on an identity provider's redirect.
    #[serde(default)]
    pub fail_on_redirect: bool,
}

impl ExtAuthConfig {
    /// Reads the proto3 JSON form; an error names the field path (`configs[1].apiKeyAuth...`).
    pub fn from_json(json: &str) -> Result<Self, ConfigError> {
        let mut deserializer = serde_json::Deserializer::from_str(json);
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::new(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })
    }
}

/// One auth step (`ExtAuthConfig.Config`): an optional name and exactly one auth type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The step's name in `booleanExpr`; `config_<index>` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// OAuth2: access token validation (or the OIDC authorization code flow).
    #[serde(default)]
    pub oauth2: Option<OAuth2Config>,
    /// Basic auth (`apr` users, or `encryption` with a `userList`).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Basic auth in its internal form (`encryption` and `userList`).
    #[serde(default)]
    pub basic_auth_internal: Option<BasicAuthInternal>,
    /// API keys, resolved from their secrets.
    #[serde(default)]
    pub api_key_auth: Option<ApiKeyAuthConfig>,
    /// Gloo's deprecated `oauth` (not implemented).
    #[serde(default)]
    pub oauth: Option<Value>,
    /// Gloo's deprecated Go plugins (not implemented).
    #[serde(default)]
    pub plugin_auth: Option<Value>,
    /// OPA policies evaluated in process.
    #[serde(default)]
    pub opa_auth: Option<OpaAuth>,
    /// LDAP, its user-facing form (a service account here names a Secret, which the control
    /// plane resolves into `ldapInternal`).
    #[serde(default)]
    pub ldap: Option<Ldap>,
    /// LDAP with the service account's credentials resolved.
    #[serde(default)]
    pub ldap_internal: Option<LdapInternal>,
    /// The JWT placeholder step (not implemented).
    #[serde(default)]
    pub jwt: Option<Value>,
    /// Passthrough to another auth server (gRPC ext_authz or HTTP).
    #[serde(default)]
    pub pass_through_auth: Option<PassThroughAuth>,
    /// HMAC (not implemented).
    #[serde(default)]
    pub hmac_auth: Option<Value>,
    /// An external OPA server (not implemented).
    #[serde(default)]
    pub opa_server_auth: Option<Value>,
    /// Gloo Portal credentials (not implemented).
    #[serde(default)]
    pub portal_auth: Option<Value>,
    /// Passthrough with its TLS Secret resolved.
    #[serde(default)]
    pub passthrough_internal: Option<PassthroughInternal>,
}

/// An empty message (`{}`), as Gloo's `oneof` markers are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Gloo's `BasicAuth`: `realm` plus either `apr` or (`encryption` and `userList`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// The realm of the `WWW-Authenticate: Basic realm="..."` challenge.
    #[serde(default)]
    pub realm: String,
    /// APR1-MD5 users (the original form).
    #[serde(default)]
    pub apr: Option<Apr>,
    /// The hash of the extended form.
    #[serde(default)]
    pub encryption: Option<EncryptionType>,
    /// The users of the extended form.
    #[serde(default)]
    pub user_list: Option<UserList>,
}

/// Gloo's `BasicAuthInternal`: the extended form only.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthInternal {
    /// The realm of the challenge.
    #[serde(default)]
    pub realm: String,
    /// The hash of the stored passwords.
    #[serde(default)]
    pub encryption: Option<EncryptionType>,
    /// The users.
    #[serde(default)]
    pub user_list: Option<UserList>,
}

/// `BasicAuth.Apr`: users with APR1 salts and hashes (the same shape as a [`UserList`]).
pub type Apr = UserList;

/// `BasicAuth.UserList` (and `BasicAuth.Apr`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserList {
    /// User name to salt and hash.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
}

/// A stored credential: `$apr1$<salt>$<hashedPassword>` for APR, hex SHA-1 of password and
/// salt for SHA-1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    /// The salt.
    #[serde(default)]
    pub salt: String,
    /// The hash.
    #[serde(default)]
    pub hashed_password: String,
}

/// `BasicAuth.EncryptionType`: `{"apr": {}}` or `{"sha1": {}}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionType {
    /// APR1-MD5 (`htpasswd -m`).
    #[serde(default)]
    pub apr: Option<Empty>,
    /// Hex SHA-1 of the password followed by the salt.
    #[serde(default)]
    pub sha1: Option<Empty>,
}

/// `ExtAuthConfig.ApiKeyAuthConfig`: the valid keys with their owners, already resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyAuthConfig {
    /// Key to its owner and metadata.
    #[serde(default)]
    pub valid_api_keys: BTreeMap<String, KeyMetadata>,
    /// The header carrying the key; `api-key` when empty.
    #[serde(default)]
    pub header_name: String,
    /// Header to add upstream, to the metadata entry that fills it.
    #[serde(default)]
    pub headers_from_key_metadata: BTreeMap<String, String>,
    /// Keys from Kubernetes secrets (already in `validApiKeys`).
    #[serde(default)]
    pub k8s_secret_apikey_storage: Option<Value>,
    /// Keys in Aerospike (not implemented).
    #[serde(default)]
    pub aerospike_apikey_storage: Option<Value>,
    /// The server's default storage (keys already in `validApiKeys`).
    #[serde(default)]
    pub server_default_apikey_storage: Option<Value>,
    /// Skip the check that metadata values are valid header values (an invalid value is
    /// never sent either way).
    #[serde(default)]
    pub skip_metadata_validation: bool,
}

/// `ApiKeyAuthConfig.KeyMetadata`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyMetadata {
    /// The key's owner (the name of its secret): the user id.
    #[serde(default)]
    pub username: String,
    /// Its metadata entries.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `ExtAuthConfig.OAuth2Config`: one of its `oauth_type`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum OAuth2Config {
    /// The OIDC authorization code flow (`OidcAuthorizationCodeConfig`), kept as JSON for the
    /// OIDC step to read.
    OidcAuthorizationCode(Value),
    /// Access tokens presented by the client.
    AccessTokenValidationConfig(Box<AccessTokenValidationConfig>),
    /// The plain OAuth2 authorization code flow (not implemented).
    Oauth2Config(Value),
}

/// `ExtAuthConfig.AccessTokenValidationConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessTokenValidationConfig {
    /// Deprecated: unauthenticated RFC 7662 introspection at this URL.
    #[serde(default)]
    pub introspection_url: Option<String>,
    /// Tokens are JWTs, checked against a key set.
    #[serde(default)]
    pub jwt: Option<JwtValidation>,
    /// RFC 7662 introspection, with client credentials.
    #[serde(default)]
    pub introspection: Option<IntrospectionValidation>,
    /// The OIDC userinfo endpoint, queried with the token when set.
    #[serde(default)]
    pub userinfo_url: String,
    /// How long introspection and userinfo answers are cached (10 minutes when absent, no
    /// cache when zero).
    #[serde(default)]
    pub cache_timeout: Option<ProtoDuration>,
    /// Scopes the token must all have.
    #[serde(default)]
    pub required_scopes: Option<ScopeList>,
    /// Dynamic metadata keys to claims (accepted; this crate emits no dynamic metadata).
    #[serde(default)]
    pub dynamic_metadata_from_claims: BTreeMap<String, String>,
    /// Claims copied to upstream headers.
    #[serde(default)]
    pub claims_to_headers: Vec<ClaimToHeader>,
    /// The default provider marker.
    #[serde(default)]
    pub default: Option<Empty>,
    /// Microsoft Entra ID distributed claims (not implemented).
    #[serde(default)]
    pub azure: Option<Value>,
}

/// `AccessTokenValidationConfig.JwtValidation`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtValidation {
    /// Keys fetched from a URL.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys inline.
    #[serde(default)]
    pub local_jwks: Option<LocalJwks>,
    /// The `iss` tokens must have; any when empty.
    #[serde(default)]
    pub issuer: String,
    /// Audiences one of which the token's `aud` must name; any when empty.
    #[serde(default)]
    pub audiences: Vec<String>,
}

/// `JwtValidation.RemoteJwks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    /// Where the key set is.
    #[serde(default)]
    pub url: String,
    /// How often it is refetched (5 minutes when absent).
    #[serde(default)]
    pub refresh_interval: Option<ProtoDuration>,
}

/// `JwtValidation.LocalJwks`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalJwks {
    /// The key set document.
    #[serde(default)]
    pub inline_string: String,
}

/// `AccessTokenValidationConfig.IntrospectionValidation` (internal form: the secret is
/// resolved; an empty secret is a client that authenticates with its id only).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntrospectionValidation {
    /// The RFC 7662 endpoint.
    #[serde(default)]
    pub introspection_url: String,
    /// The client id to authenticate with.
    #[serde(default)]
    pub client_id: String,
    /// The client secret.
    #[serde(default)]
    pub client_secret: String,
    /// The introspection response member holding the user id (`sub`, `username`); when set
    /// and missing from an answer, the request is denied.
    #[serde(default)]
    pub user_id_attribute_name: String,
}

/// `AccessTokenValidationConfig.ScopeList`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeList {
    /// The scopes.
    #[serde(default)]
    pub scope: Vec<String>,
}

/// `ExtAuthConfig.ClaimToHeader`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The claim (or introspection member).
    #[serde(default)]
    pub claim: String,
    /// The upstream header.
    #[serde(default)]
    pub header: String,
    /// Add to the request's values instead of replacing them.
    #[serde(default)]
    pub append: bool,
}

/// A `google.protobuf.Duration` in its JSON form: decimal seconds with an `s` suffix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProtoDuration(pub Duration);

impl<'de> Deserialize<'de> for ProtoDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let seconds = text
            .strip_suffix('s')
            .filter(|n| {
                !n.is_empty()
                    && n.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    && n.bytes().filter(|b| *b == b'.').count() <= 1
            })
            .and_then(|n| n.parse::<f64>().ok())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "invalid duration {text:?}: expected non-negative seconds with an `s` suffix, like \"1.5s\""
                ))
            })?;
        Ok(ProtoDuration(seconds))
    }
}

/// Gloo's `PassThroughAuth`: ask another auth server, over gRPC (Envoy's ext_authz protocol) or
/// HTTP, whether the request may pass.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughAuth {
    /// An `envoy.service.auth.v3.Authorization` server.
    #[serde(default)]
    pub grpc: Option<PassThroughGrpc>,
    /// An HTTP server answering a `POST`.
    #[serde(default)]
    pub http: Option<PassThroughHttp>,
    /// Custom config sent with every check (gRPC: filter metadata
    /// `solo.auth.passthrough.config`; HTTP: the `config` member of the body).
    #[serde(default)]
    pub config: Option<serde_json::Map<String, Value>>,
    /// Allow the request when the server cannot be reached, times out or fails (5xx).
    #[serde(default)]
    pub failure_mode_allow: bool,
}

/// Gloo's `PassThroughGrpc`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughGrpc {
    /// `host:port` of the server.
    #[serde(default)]
    pub address: String,
    /// How long a check may take (5 s when absent).
    #[serde(default)]
    pub connection_timeout: Option<ProtoDuration>,
    /// TLS to the server: set (even empty), the connection uses TLS. A `secretRef` must be
    /// resolved by the control plane (into `passthroughInternal`'s `tlsConfigData`).
    #[serde(default)]
    pub tls_config: Option<PassThroughTlsConfig>,
    /// Retries of calls that fail with `UNAVAILABLE` (none when absent).
    #[serde(default)]
    pub retry_policy: Option<RetryPolicy>,
}

/// Gloo's `PassThroughGrpcTLSConfig` / `PassThroughHttpTLSConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughTlsConfig {
    /// A Kubernetes TLS Secret (`tls.crt`, `tls.key`, `ca.crt`), kept as JSON: the control
    /// plane resolves it into [`PassthroughTlsConfigData`].
    #[serde(default)]
    pub secret_ref: Option<Value>,
    /// TLS protocol versions.
    #[serde(default)]
    pub ssl_params: Option<SslParameters>,
}

/// Gloo's `SslParameters` (of the passthrough TLS configs).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslParameters {
    /// The lowest TLS version offered (TLS 1.2 when `TLS_AUTO`).
    #[serde(default)]
    pub minimum_protocol_version: TlsProtocolVersion,
    /// The highest TLS version offered (TLS 1.3 when `TLS_AUTO`).
    #[serde(default)]
    pub maximum_protocol_version: TlsProtocolVersion,
}

/// `SslParameters.ProtocolVersion`, by name (`"TLSv1_2"`) or number, as proto3 JSON writes an
/// enum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsProtocolVersion {
    /// `TLS_AUTO` (0): the default.
    #[default]
    Auto,
    /// `TLSv1_1` (1).
    V1_1,
    /// `TLSv1_2` (2).
    V1_2,
    /// `TLSv1_3` (3).
    V1_3,
}

impl<'de> Deserialize<'de> for TlsProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(match &value {
            Value::String(s) if s == "TLS_AUTO" => Self::Auto,
            Value::String(s) if s == "TLSv1_1" => Self::V1_1,
            Value::String(s) if s == "TLSv1_2" => Self::V1_2,
            Value::String(s) if s == "TLSv1_3" => Self::V1_3,
            Value::Number(n) if n.as_u64() == Some(0) => Self::Auto,
            Value::Number(n) if n.as_u64() == Some(1) => Self::V1_1,
            Value::Number(n) if n.as_u64() == Some(2) => Self::V1_2,
            Value::Number(n) if n.as_u64() == Some(3) => Self::V1_3,
            Value::Null => Self::Auto,
            other => {
                return Err(de::Error::custom(format!(
                    "unknown TLS protocol version {other}: expected TLS_AUTO, TLSv1_1, TLSv1_2 or TLSv1_3"
                )))
            }
        })
    }
}

/// Gloo's `RetryPolicy` (of the gRPC passthrough).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// How many times a failed call is retried (1 when absent).
    #[serde(default)]
    pub num_retries: Option<u32>,
    /// The back-off between attempts.
    #[serde(default)]
    pub retry_back_off: Option<BackoffStrategy>,
}

/// Gloo's `BackoffStrategy`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackoffStrategy {
    /// The first back-off's ceiling (1 s when absent), doubled for each retry.
    #[serde(default)]
    pub base_interval: Option<ProtoDuration>,
    /// The ceiling of every back-off (10 times `baseInterval` when absent).
    #[serde(default)]
    pub max_interval: Option<ProtoDuration>,
}

/// `ExtAuthConfig.PassthroughAuthInternalConfig`: a passthrough step with its TLS Secret
/// resolved.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassthroughInternal {
    /// The step (its `tlsConfig` masked by the control plane).
    #[serde(default)]
    pub pass_through_auth: Option<PassThroughAuth>,
    /// The TLS material; the connection uses TLS when this is set.
    #[serde(default)]
    pub tls_config_data: Option<PassthroughTlsConfigData>,
}

/// `PassthroughAuthInternalConfig.PassthroughAuthTlsConfigData`: base64-encoded PEM (plain PEM
/// is taken as it is too). No `rootCaPem`: the system's CA certificates are trusted; a
/// `certPem` with its `keyPem`: the client certificate (mTLS).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassthroughTlsConfigData {
    /// The client certificate chain.
    #[serde(default)]
    pub cert_pem: String,
    /// The client certificate's private key.
    #[serde(default)]
    pub key_pem: String,
    /// The CA certificates the server's certificate must chain to.
    #[serde(default)]
    pub root_ca_pem: String,
    /// TLS protocol versions.
    #[serde(default)]
    pub ssl_params: Option<SslParameters>,
}

/// Gloo's `PassThroughHttp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughHttp {
    /// The URL the check is `POST`ed to (its path is kept).
    #[serde(default)]
    pub url: String,
    /// What the check request carries.
    #[serde(default)]
    pub request: Option<PassThroughHttpRequest>,
    /// What of the answer reaches the upstream or the client.
    #[serde(default)]
    pub response: Option<PassThroughHttpResponse>,
    /// How long a check may take (5 s when absent).
    #[serde(default)]
    pub connection_timeout: Option<ProtoDuration>,
    /// TLS client settings for an `https` URL. A `secretRef` must be resolved by the control
    /// plane (into `passthroughInternal`'s `tlsConfigData`).
    #[serde(default)]
    pub tls_config: Option<PassThroughTlsConfig>,
    /// How long the server may take to start answering; `connectionTimeout` bounds the whole
    /// call either way.
    #[serde(default)]
    pub response_header_timeout: Option<ProtoDuration>,
    /// Connection pool tuning (accepted; the shared client's pool is used).
    #[serde(default)]
    pub connection_pool: Option<Value>,
}

/// `PassThroughHttp.Request`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughHttpRequest {
    /// Headers copied from the client's request.
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Headers set on the check request (over copied ones).
    #[serde(default)]
    pub headers_to_add: BTreeMap<String, String>,
    /// Send the auth state (`state`) in the body.
    #[serde(default)]
    pub pass_through_state: bool,
    /// Send Envoy's filter metadata (`filterMetadata`) in the body.
    #[serde(default)]
    pub pass_through_filter_metadata: bool,
    /// Send the client's (buffered) body (`body`) in the body.
    #[serde(default)]
    pub pass_through_body: bool,
}

/// `PassThroughHttp.Response`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassThroughHttpResponse {
    /// Answer headers appended to the upstream request when allowed.
    #[serde(default)]
    pub allowed_upstream_headers: Vec<String>,
    /// Answer headers sent to the client when denied.
    #[serde(default)]
    pub allowed_client_headers_on_denied: Vec<String>,
    /// The answer's body is `{"state": {...}}`, the new auth state.
    #[serde(default)]
    pub read_state_from_response: bool,
    /// Answer headers that replace the upstream request's when allowed.
    #[serde(default)]
    pub allowed_upstream_headers_to_overwrite: Vec<String>,
    /// Answer headers set on the client's response when allowed.
    #[serde(default)]
    pub allowed_client_headers_on_success: Vec<String>,
}

/// Gloo's `Ldap` (as `configs[].ldap`): `groupLookupSettings` names a Secret (kept as JSON),
/// so a config with one must come as [`LdapInternal`].
pub type Ldap = LdapConfig<Value>;

/// Gloo's `ExtAuthConfig.LdapConfig` (`configs[].ldapInternal`): the service account's
/// credentials resolved.
pub type LdapInternal = LdapConfig<LdapServiceAccount>;

/// The fields of Gloo's `Ldap` and `ExtAuthConfig.LdapConfig`, which differ only in their
/// `groupLookupSettings` (`G`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapConfig<G> {
    /// The server: `host:port`, or an `ldap://host:port` URL, or `ldaps://host:port` for LDAP
    /// over TLS.
    #[serde(default)]
    pub address: String,
    /// The user entry's DN, `%s` standing for the user name (`uid=%s,ou=people,dc=solo,dc=io`).
    #[serde(default)]
    pub user_dn_template: String,
    /// The attribute listing the entry's groups (`memberOf` when empty).
    #[serde(default)]
    pub membership_attribute_name: String,
    /// Group DNs one of which the user must be in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// The pool of connections to the server (5 kept at most, 2 opened up front, by default).
    #[serde(default)]
    pub pool: Option<LdapConnectionPool>,
    /// The filter of the search for the user entry (`(uid=*)` when empty).
    #[serde(default)]
    pub search_filter: String,
    /// Only authenticate: no group check.
    #[serde(default)]
    pub disable_group_checking: bool,
    /// The service account that reads group membership.
    #[serde(default = "Option::default")]
    pub group_lookup_settings: Option<G>,
}

/// `Ldap.ConnectionPool`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapConnectionPool {
    /// How many idle connections the pool keeps at most (5 when absent).
    #[serde(default)]
    pub max_size: Option<u32>,
    /// How many connections are opened when the pool is first used (2 when absent).
    #[serde(default)]
    pub initial_size: Option<u32>,
}

/// `ExtAuthConfig.LdapServiceAccountConfig`: resolved credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapServiceAccount {
    /// The service account's DN.
    #[serde(default)]
    pub username: String,
    /// Its password.
    #[serde(default)]
    pub password: String,
    /// Read the user's groups bound as the service account (not as the user).
    #[serde(default)]
    pub check_groups_with_service_account: bool,
}

/// Gloo's `ExtAuthConfig.OpaAuthConfig`: Rego modules (file name to source, resolved from their
/// ConfigMaps) and the query that decides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpaAuth {
    /// File name to Rego source.
    #[serde(default)]
    pub modules: BTreeMap<String, String>,
    /// The query; `true`, or an array whose first element is `true`, allows.
    #[serde(default)]
    pub query: String,
    /// Evaluation options.
    #[serde(default)]
    pub options: Option<OpaAuthOptions>,
}

/// Gloo's `OpaAuthOptions`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpaAuthOptions {
    /// Gloo's faster input conversion (accepted; the input here is always built whole).
    #[serde(default)]
    pub fast_input_conversion: bool,
    /// Put the decision reason in dynamic metadata (accepted; no dynamic metadata is emitted).
    #[serde(default)]
    pub return_decision_reason: bool,
}
