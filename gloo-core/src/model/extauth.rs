//! External auth: Gloo Enterprise's `enterprise/options/extauth/v1/extauth.proto`
//! (`enterprise.gloo.solo.io`): the `AuthConfig` kind, the `extauth` option of virtual hosts,
//! routes and weighted destinations (`ExtAuthExtension`), and the global ext auth `Settings`.
//!
//! Basic auth, API keys and OAuth2 / OIDC are fully typed; OPA, LDAP, pass-through, plugin,
//! HMAC and portal configs are accepted and carried as JSON (the ext auth server reads LDAP and
//! pass-through).
//!
//! Basic auth for a virtual host: an `AuthConfig`, a virtual host that refers to it, and a route
//! that needs no auth:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::extauth::{AuthConfigRef, ExtAuthExtensionRef};
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: enterprise.gloo.solo.io/v1
//! kind: AuthConfig
//! metadata:
//!   name: basic-auth
//!   namespace: gloo-system
//! spec:
//!   configs:
//!   - basicAuth:
//!       apr:
//!         users:
//!           user:
//!             salt: TYiryv0/
//!             hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1
//! ---
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: petstore
//!   namespace: gloo-system
//! spec:
//!   virtualHost:
//!     domains:
//!     - '*'
//!     options:
//!       extauth:
//!         configRef:
//!           name: basic-auth
//!           namespace: gloo-system
//!     routes:
//!     - matchers:
//!       - exact: /health
//!       directResponseAction:
//!         status: 200
//!       options:
//!         extauth:
//!           disable: true
//! "#;
//! let parsed = parse_str(yaml, "basic-auth.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::AuthConfig(auth) = &parsed.resources[0].resource else {
//!     panic!("expected an AuthConfig");
//! };
//! // An unnamed config is named after its position, as Gloo names it.
//! assert_eq!(auth.spec.config_name(0), "config_0");
//! let step = auth.spec.configs[0].auth_config()?.ok_or("no auth config")?;
//! assert_eq!(step.type_name(), "basicAuth");
//! let AuthConfigRef::BasicAuth(basic) = step else {
//!     panic!("expected basic auth");
//! };
//! let users = &basic.apr.as_ref().ok_or("no apr")?.users;
//! assert_eq!(users["user"].salt.as_deref(), Some("TYiryv0/"));
//!
//! let Resource::VirtualService(vs) = &parsed.resources[1].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let host = vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?;
//! let extauth = host.options.as_ref().and_then(|o| o.extauth.as_deref()).ok_or("no extauth")?;
//! let auth_ref = auth.to_ref();
//! assert_eq!(extauth.spec()?, Some(ExtAuthExtensionRef::ConfigRef(&auth_ref)));
//! let route_auth = host.routes[0].options.as_ref().and_then(|o| o.extauth.as_deref());
//! let route_auth = route_auth.ok_or("no route extauth")?;
//! assert_eq!(route_auth.spec()?, Some(ExtAuthExtensionRef::Disable(true)));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

/// `google.protobuf.Empty`: written as `{}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

// ---------------------------------------------------------------------------------------------
// AuthConfig
// ---------------------------------------------------------------------------------------------

/// The spec of an `AuthConfig` (`enterprise.gloo.solo.io/v1`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthConfigSpec {
    /// Auth configs checked in order; by default all must authorize the request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<Config>,
    /// Boolean expression over config names, e.g. `basic1 || (oidc1 && !oidc2)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boolean_expr: Option<String>,
    /// Answer an OIDC redirect with 401 instead of the 302.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_redirect: Option<bool>,
}

impl AuthConfigSpec {
    /// The name of config `index`: its `name`, or `config_<index>` as Gloo generates it.
    pub fn config_name(&self, index: usize) -> String {
        match self.configs.get(index).and_then(|c| c.name.as_deref()) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => format!("config_{index}"),
        }
    }
}

/// One auth step of an `AuthConfig` (`AuthConfig.Config`, oneof `auth_config`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Name used by `booleanExpr` and in logs; `config_<index>` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// HTTP basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Deprecated OIDC config; prefer `oauth2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuth>,
    /// OAuth2 / OIDC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// API key auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// Deprecated Go plugin auth. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_auth: Option<serde_json::Value>,
    /// OPA auth. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opa_auth: Option<serde_json::Value>,
    /// LDAP auth, carried as JSON to the ext auth server (gloo-filters' `extauth-ldap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<serde_json::Value>,
    /// Placeholder for the JWT filter's result in a boolean expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Empty>,
    /// Pass-through (gRPC/HTTP) auth, carried as JSON to the ext auth server (gloo-filters'
    /// `extauth::passthrough`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_through_auth: Option<serde_json::Value>,
    /// HMAC auth. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_auth: Option<serde_json::Value>,
    /// OPA server auth. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opa_server_auth: Option<serde_json::Value>,
    /// Portal auth. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub portal_auth: Option<serde_json::Value>,
}

/// The member of [`Config`]'s `auth_config` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AuthConfigRef<'a> {
    /// `basicAuth`.
    BasicAuth(&'a BasicAuth),
    /// `oauth` (deprecated).
    OAuth(&'a OAuth),
    /// `oauth2`.
    OAuth2(&'a OAuth2),
    /// `apiKeyAuth`.
    ApiKeyAuth(&'a ApiKeyAuth),
    /// `pluginAuth`, as JSON.
    PluginAuth(&'a serde_json::Value),
    /// `opaAuth`, as JSON.
    OpaAuth(&'a serde_json::Value),
    /// `ldap`, as JSON.
    Ldap(&'a serde_json::Value),
    /// `jwt`.
    Jwt,
    /// `passThroughAuth`, as JSON.
    PassThroughAuth(&'a serde_json::Value),
    /// `hmacAuth`, as JSON.
    HmacAuth(&'a serde_json::Value),
    /// `opaServerAuth`, as JSON.
    OpaServerAuth(&'a serde_json::Value),
    /// `portalAuth`, as JSON.
    PortalAuth(&'a serde_json::Value),
}

impl AuthConfigRef<'_> {
    /// The JSON name of the member.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthConfigRef::BasicAuth(_) => "basicAuth",
            AuthConfigRef::OAuth(_) => "oauth",
            AuthConfigRef::OAuth2(_) => "oauth2",
            AuthConfigRef::ApiKeyAuth(_) => "apiKeyAuth",
            AuthConfigRef::PluginAuth(_) => "pluginAuth",
            AuthConfigRef::OpaAuth(_) => "opaAuth",
            AuthConfigRef::Ldap(_) => "ldap",
            AuthConfigRef::Jwt => "jwt",
            AuthConfigRef::PassThroughAuth(_) => "passThroughAuth",
            AuthConfigRef::HmacAuth(_) => "hmacAuth",
            AuthConfigRef::OpaServerAuth(_) => "opaServerAuth",
            AuthConfigRef::PortalAuth(_) => "portalAuth",
        }
    }
}

impl Config {
    /// The auth type that is set, or an error if more than one is.
    pub fn auth_config(&self) -> Result<Option<AuthConfigRef<'_>>, OneofError> {
        OneofError::check(
            "auth_config",
            &[
                ("basicAuth", self.basic_auth.is_some()),
                ("oauth", self.oauth.is_some()),
                ("oauth2", self.oauth2.is_some()),
                ("apiKeyAuth", self.api_key_auth.is_some()),
                ("pluginAuth", self.plugin_auth.is_some()),
                ("opaAuth", self.opa_auth.is_some()),
                ("ldap", self.ldap.is_some()),
                ("jwt", self.jwt.is_some()),
                ("passThroughAuth", self.pass_through_auth.is_some()),
                ("hmacAuth", self.hmac_auth.is_some()),
                ("opaServerAuth", self.opa_server_auth.is_some()),
                ("portalAuth", self.portal_auth.is_some()),
            ],
        )?;
        let r = if let Some(v) = &self.basic_auth {
            AuthConfigRef::BasicAuth(v)
        } else if let Some(v) = &self.oauth {
            AuthConfigRef::OAuth(v)
        } else if let Some(v) = &self.oauth2 {
            AuthConfigRef::OAuth2(v)
        } else if let Some(v) = &self.api_key_auth {
            AuthConfigRef::ApiKeyAuth(v)
        } else if let Some(v) = &self.plugin_auth {
            AuthConfigRef::PluginAuth(v)
        } else if let Some(v) = &self.opa_auth {
            AuthConfigRef::OpaAuth(v)
        } else if let Some(v) = &self.ldap {
            AuthConfigRef::Ldap(v)
        } else if self.jwt.is_some() {
            AuthConfigRef::Jwt
        } else if let Some(v) = &self.pass_through_auth {
            AuthConfigRef::PassThroughAuth(v)
        } else if let Some(v) = &self.hmac_auth {
            AuthConfigRef::HmacAuth(v)
        } else if let Some(v) = &self.opa_server_auth {
            AuthConfigRef::OpaServerAuth(v)
        } else if let Some(v) = &self.portal_auth {
            AuthConfigRef::PortalAuth(v)
        } else {
            return Ok(None);
        };
        Ok(Some(r))
    }
}

// ---------------------------------------------------------------------------------------------
// extauth option on virtual hosts / routes / weighted destinations
// ---------------------------------------------------------------------------------------------

/// The `extauth` option of a virtual host, route or weighted destination (oneof `spec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuthExtension {
    /// Disables auth here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
    /// An `AuthConfig` for Gloo's ext auth server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_ref: Option<ResourceRef>,
    /// Settings for a custom ext auth server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_auth: Option<CustomAuth>,
}

/// The member of [`ExtAuthExtension`]'s `spec` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ExtAuthExtensionRef<'a> {
    /// `disable` (its value).
    Disable(bool),
    /// `configRef`.
    ConfigRef(&'a ResourceRef),
    /// `customAuth`.
    CustomAuth(&'a CustomAuth),
}

impl ExtAuthExtension {
    /// The member that is set, or an error if more than one is.
    pub fn spec(&self) -> Result<Option<ExtAuthExtensionRef<'_>>, OneofError> {
        OneofError::check(
            "spec",
            &[
                ("disable", self.disable.is_some()),
                ("configRef", self.config_ref.is_some()),
                ("customAuth", self.custom_auth.is_some()),
            ],
        )?;
        Ok(if let Some(d) = self.disable {
            Some(ExtAuthExtensionRef::Disable(d))
        } else if let Some(r) = &self.config_ref {
            Some(ExtAuthExtensionRef::ConfigRef(r))
        } else {
            self.custom_auth
                .as_ref()
                .map(ExtAuthExtensionRef::CustomAuth)
        })
    }
}

/// Settings for a custom ext auth server (`CustomAuth`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomAuth {
    /// Context extensions added to the check request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub context_extensions: BTreeMap<String, String>,
    /// Which `namedExtauth` server of the Settings to use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Global settings
// ---------------------------------------------------------------------------------------------

/// Global ext auth settings (`enterprise.gloo.solo.io.Settings`): `Settings.spec.extauth`,
/// `namedExtauth` values and the `extauth` HTTP listener option.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// The upstream of the auth server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extauthz_server_ref: Option<ResourceRef>,
    /// Talk to the server over HTTP instead of gRPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_service: Option<HttpService>,
    /// gRPC settings (the default transport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_service: Option<GrpcService>,
    /// Header the server sets with the trusted user id (sanitized from requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_header: Option<String>,
    /// Timeout for the auth server (default 200ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Allow requests when the auth server fails or times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode_allow: Option<bool>,
    /// Send the request body too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<BufferSettings>,
    /// Clear the route cache when the server changes headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_route_cache: Option<bool>,
    /// HTTP status returned on network errors to the server (default 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_on_error: Option<u32>,
    /// The `ext_authz` transport API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_api_version: Option<ApiVersion>,
    /// Additional stats prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat_prefix: Option<String>,
}

/// `ext_authz` transport API version (`Settings.ApiVersion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ApiVersion {
    /// The v3 API.
    #[default]
    V3,
}

/// gRPC ext auth service settings (`GrpcService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcService {
    /// The authority header for calls to the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
}

/// HTTP ext auth service settings (`HttpService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpService {
    /// Prefix for the auth request's path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// What is sent to the auth server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<HttpServiceRequest>,
    /// What is taken from its response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<HttpServiceResponse>,
}

/// The auth request of an HTTP ext auth service (`HttpService.Request`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpServiceRequest {
    /// Request headers copied to the auth request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers: Vec<String>,
    /// Headers added to the auth request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_to_add: BTreeMap<String, String>,
    /// Regexes of request headers copied to the auth request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_headers_regex: Vec<String>,
}

/// The auth response handling of an HTTP ext auth service (`HttpService.Response`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpServiceResponse {
    /// Auth response headers added to the upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_upstream_headers: Vec<String>,
    /// Auth response headers added to a denied client response.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_client_headers: Vec<String>,
    /// Auth response headers appended to the upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_upstream_headers_to_append: Vec<String>,
}

/// Request body buffering for the auth request (`BufferSettings`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BufferSettings {
    /// Maximum body size held in memory (default 4KB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_bytes: Option<u32>,
    /// Send a partial body instead of answering 413.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_partial_message: Option<bool>,
    /// Send the body as raw bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_as_bytes: Option<bool>,
}

// ---------------------------------------------------------------------------------------------
// Basic auth
// ---------------------------------------------------------------------------------------------

/// HTTP basic auth (`BasicAuth`): either `apr`, or `encryption` plus `userList`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// The realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Legacy APR-hashed users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apr: Option<BasicAuthApr>,
    /// The hashing algorithm of `userList` passwords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionType>,
    /// Users and their hashed passwords (oneof `user_source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_list: Option<UserList>,
}

/// APR-hashed users (`BasicAuth.Apr`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuthApr {
    /// Usernames to their salted, hashed passwords.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, SaltedHashedPassword>,
}

/// A user's salt and hashed password (`BasicAuth.Apr.SaltedHashedPassword`, `BasicAuth.User`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SaltedHashedPassword {
    /// The salt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The salted, hashed password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashed_password: Option<String>,
}

/// The password hashing algorithm (`BasicAuth.EncryptionType`, oneof `algorithm`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EncryptionType {
    /// Apache iterated MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apr: Option<Empty>,
    /// SHA-1 (insecure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<Empty>,
}

/// Users of extended basic auth (`BasicAuth.UserList`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserList {
    /// Usernames to their salted, hashed passwords.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, SaltedHashedPassword>,
}

// ---------------------------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------------------------

/// Deprecated OIDC config (`OAuth`); prefer [`OAuth2`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth {
    /// Client id registered with the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Secret holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<ResourceRef>,
    /// The issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    /// Extra query parameters for the authorization request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_endpoint_query_params: BTreeMap<String, String>,
    /// The public app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    /// The callback path, relative to the app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_path: Option<String>,
    /// Scopes in addition to `openid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// OAuth2 auth (`OAuth2`, oneof `oauth_type`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuth2 {
    /// The OIDC authorization code flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc_authorization_code: Option<OidcAuthorizationCode>,
    /// Validation of access tokens presented on requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_validation: Option<AccessTokenValidation>,
    /// Plain OAuth2 authorization code flow (tech preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<PlainOAuth2>,
}

/// The member of [`OAuth2`]'s `oauth_type` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OAuth2TypeRef<'a> {
    /// `oidcAuthorizationCode`.
    OidcAuthorizationCode(&'a OidcAuthorizationCode),
    /// `accessTokenValidation`.
    AccessTokenValidation(&'a AccessTokenValidation),
    /// `oauth2`.
    PlainOAuth2(&'a PlainOAuth2),
}

impl OAuth2 {
    /// The OAuth2 flavour that is set, or an error if more than one is.
    pub fn oauth_type(&self) -> Result<Option<OAuth2TypeRef<'_>>, OneofError> {
        OneofError::check(
            "oauth_type",
            &[
                (
                    "oidcAuthorizationCode",
                    self.oidc_authorization_code.is_some(),
                ),
                (
                    "accessTokenValidation",
                    self.access_token_validation.is_some(),
                ),
                ("oauth2", self.oauth2.is_some()),
            ],
        )?;
        Ok(if let Some(v) = &self.oidc_authorization_code {
            Some(OAuth2TypeRef::OidcAuthorizationCode(v))
        } else if let Some(v) = &self.access_token_validation {
            Some(OAuth2TypeRef::AccessTokenValidation(v))
        } else {
            self.oauth2.as_ref().map(OAuth2TypeRef::PlainOAuth2)
        })
    }
}

/// Redis connection options (`RedisOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisOptions {
    /// `host:port` or `unix://path/to/socket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Database number (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db: Option<i32>,
    /// Connection pool size (default 10 per CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<i32>,
    /// Mount path of TLS certs for a TLS socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_mount_path: Option<String>,
    /// The socket type (default TCP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_type: Option<RedisSocketType>,
}

/// Redis socket type (`RedisOptions.SocketType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RedisSocketType {
    /// Plain TCP.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// TLS.
    #[serde(rename = "TLS")]
    Tls,
}

/// Where OAuth session tokens are kept (`UserSession`, oneof `session`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSession {
    /// Fail the auth flow when the session can't be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_on_fetch_failure: Option<bool>,
    /// Set-Cookie options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_options: Option<CookieOptions>,
    /// Keep the tokens in the cookie itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<InternalSession>,
    /// Keep the tokens in Redis, with a session id in the cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisSession>,
    /// Encryption of cookie values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_config: Option<CipherConfig>,
}

/// Cookie-held session (`UserSession.InternalSession`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InternalSession {
    /// Refresh expired id tokens with the refresh token (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_refreshing: Option<bool>,
    /// Prefix of cookie keys (`<keyPrefix>_<cookie name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Domain requests must match (RFC 6265 domain matching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_domain: Option<String>,
}

/// Redis-held session (`UserSession.RedisSession`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedisSession {
    /// Redis connection options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<RedisOptions>,
    /// Key prefix inside Redis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Cookie holding the session id (default `__session`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_name: Option<String>,
    /// Refresh expired id tokens with the refresh token (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_refreshing: Option<bool>,
    /// Refresh id tokens this long before they expire (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_expiry_buffer: Option<Duration>,
    /// Domain requests must match (RFC 6265 domain matching).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_domain: Option<String>,
    /// Header carrying the session id in the code exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
}

/// Set-Cookie options (`UserSession.CookieOptions`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CookieOptions {
    /// Max age in seconds (default 30 days; 0 disables expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Use a non-secure cookie (testing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_secure: Option<bool>,
    /// HttpOnly cookie (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Cookie path (default `/`; empty for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// SameSite mode (default lax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<SameSite>,
    /// Cookie domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// Cookie SameSite mode (`UserSession.CookieOptions.SameSite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SameSite {
    /// Like lax, but not written in the cookie header.
    #[default]
    DefaultMode,
    /// `SameSite=Lax`.
    LaxMode,
    /// `SameSite=Strict`.
    StrictMode,
    /// `SameSite=None`.
    NoneMode,
}

/// Cookie value encryption (`UserSession.CipherConfig`, oneof `key`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CipherConfig {
    /// Secret (`gloo.solo.io.EncryptionKeySecret`) with the 32-byte key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_ref: Option<ResourceRef>,
}

/// Headers added to upstream requests (`HeaderConfiguration`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderConfiguration {
    /// Forward the id token in this header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_header: Option<String>,
    /// Forward the access token in this header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_header: Option<String>,
    /// Prefix the access token header value with `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_bearer_schema_for_authorization: Option<bool>,
}

/// Overrides of discovered OIDC provider metadata (`DiscoveryOverride`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DiscoveryOverride {
    /// Authorization endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_endpoint: Option<String>,
    /// Token endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// JWKS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Supported response types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types: Vec<String>,
    /// Supported subject identifier types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    /// Supported id token signing algorithms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_algs: Vec<String>,
    /// Supported token endpoint client auth methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_methods: Vec<String>,
    /// Supported claims.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    /// Token revocation endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// End session endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
}

/// What to do when a token's key is not in the cached JWKS (`JwksOnDemandCacheRefreshPolicy`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksOnDemandCacheRefreshPolicy {
    /// Never refresh on demand (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never: Option<Empty>,
    /// Always refresh on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<Empty>,
    /// Refresh on demand at most this many times per polling interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_idp_req_per_polling_interval: Option<u32>,
}

/// Fill query parameters from dynamic metadata (`AutoMapFromMetadata`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AutoMapFromMetadata {
    /// The metadata namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// End session endpoint properties (`EndSessionProperties`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndSessionProperties {
    /// HTTP method of the end session request (default GET).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_type: Option<EndSessionMethodType>,
}

/// End session request method (`EndSessionProperties.MethodType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EndSessionMethodType {
    /// GET.
    #[default]
    GetMethod,
    /// POST.
    PostMethod,
}

/// Copies a token claim to an upstream header (`enterprise.gloo.solo.io.ClaimToHeader`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The claim, e.g. `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The header, e.g. `x-sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Append to an existing header instead of overwriting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

/// Microsoft Entra ID distributed claims (`Azure`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Azure {
    /// Client id of the ExtAuthService app registered in Entra.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Tenant id where that app is registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Secret holding that app's client secret (key `client-secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ResourceRef>,
    /// Redis for caching Entra claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_caching_options: Option<RedisOptions>,
}

/// The OIDC authorization code flow (`OidcAuthorizationCode`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcAuthorizationCode {
    /// Client id registered with the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Deprecated: secret holding the client secret (use `clientAuthentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<ResourceRef>,
    /// Issuer URL; discovery is at `<issuerUrl>/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    /// Extra query parameters for the authorization request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_endpoint_query_params: BTreeMap<String, String>,
    /// Extra query parameters for the token request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_endpoint_query_params: BTreeMap<String, String>,
    /// The public app URL, used when the original URL is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    /// Callback path relative to the app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_path: Option<String>,
    /// Logout path relative to the app URL; logout is disabled without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_path: Option<String>,
    /// Where to redirect after logout (default the app URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_logout_url: Option<String>,
    /// Scopes in addition to `openid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// User session settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<UserSession>,
    /// Headers added to upstream requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderConfiguration>,
    /// Overrides of discovered provider metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_override: Option<DiscoveryOverride>,
    /// Discovery polling interval (default 30 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_poll_interval: Option<Duration>,
    /// On-demand JWKS refresh policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_cache_refresh_policy: Option<JwksOnDemandCacheRefreshPolicy>,
    /// Deprecated: header carrying the session id in the code exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id_header_name: Option<String>,
    /// Treat `callbackPath` as a regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_callback_path_as_regex: Option<bool>,
    /// Fill query parameters from dynamic metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_map_from_metadata: Option<AutoMapFromMetadata>,
    /// End session endpoint properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_properties: Option<EndSessionProperties>,
    /// Dynamic metadata keys to claim names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_metadata_from_claims: BTreeMap<String, String>,
    /// Deprecated: don't use a client secret (use `clientAuthentication`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_client_secret: Option<bool>,
    /// Access token claim mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<TokenClaimsToHeaders>,
    /// Identity token claim mapping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_token: Option<TokenClaimsToHeaders>,
    /// How the client authenticates in the code exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_authentication: Option<ClientAuthentication>,
    /// Default provider behaviour (oneof `Provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Empty>,
    /// Microsoft Entra ID provider (oneof `Provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<Azure>,
    /// Front channel logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_channel_logout: Option<FrontChannelLogout>,
}

/// Claims of a token copied to headers (`OidcAuthorizationCode.AccessToken` / `.IdentityToken`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenClaimsToHeaders {
    /// Claims to copy to upstream headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_to_headers: Vec<ClaimToHeader>,
}

/// Client authentication for the code exchange (`OidcAuthorizationCode.ClientAuthentication`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientAuthentication {
    /// Client secret authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// Private key JWT authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_jwt: Option<PrivateKeyJwt>,
}

/// Client secret authentication (`ClientAuthentication.ClientSecret`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientSecret {
    /// Secret holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<ResourceRef>,
    /// Don't use a client secret (some PKCE flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_client_secret: Option<bool>,
}

/// Private key JWT authentication (`ClientAuthentication.PrivateKeyJwt`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrivateKeyJwt {
    /// Secret with the JWT signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_ref: Option<ResourceRef>,
    /// JWT validity (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for: Option<Duration>,
}

/// Front channel logout (`OidcAuthorizationCode.FrontChannelLogout`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrontChannelLogout {
    /// The front channel logout path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Plain OAuth2 authorization code flow (`PlainOAuth2`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlainOAuth2 {
    /// Client id registered with the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Secret holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<ResourceRef>,
    /// Extra query parameters for the authorization request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth_endpoint_query_params: BTreeMap<String, String>,
    /// The public app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
    /// Callback path relative to the app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_path: Option<String>,
    /// Scopes to request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// User session settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<UserSession>,
    /// Logout path relative to the app URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_path: Option<String>,
    /// Extra query parameters for the token request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub token_endpoint_query_params: BTreeMap<String, String>,
    /// Where to redirect after logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_logout_url: Option<String>,
    /// Authorization endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_endpoint: Option<String>,
    /// Token endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// Token revocation endpoint URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Don't use a client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_client_secret: Option<bool>,
}

/// JWT access token validation (`JwtValidation`, oneof `jwks_source_specifier`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtValidation {
    /// Fetch the JWKS from a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_jwks: Option<JwtRemoteJwks>,
    /// An inline JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_jwks: Option<JwtLocalJwks>,
    /// Required `iss` claim; not checked when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Allowed audiences; not checked when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
}

/// A remote JWKS (`JwtValidation.RemoteJwks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRemoteJwks {
    /// The JWKS URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Refresh interval (default 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<Duration>,
}

/// An inline JWKS (`JwtValidation.LocalJwks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtLocalJwks {
    /// The JWKS as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_string: Option<String>,
}

/// Opaque token introspection (`IntrospectionValidation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IntrospectionValidation {
    /// The RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// Client id, if the endpoint requires client auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Secret holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<ResourceRef>,
    /// Introspection response attribute holding the user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id_attribute_name: Option<String>,
    /// Allow a client id without a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_client_secret: Option<bool>,
}

/// Access token validation (`AccessTokenValidation`, oneofs `validation_type`, `scope_validation`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessTokenValidation {
    /// Deprecated: introspection URL without client auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
    /// Validate JWT access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtValidation>,
    /// Validate opaque tokens by introspection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<IntrospectionValidation>,
    /// OIDC userinfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_url: Option<String>,
    /// Cache lifetime of introspection/userinfo responses (default 10 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_timeout: Option<Duration>,
    /// Scopes the token must all have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scopes: Option<ScopeList>,
    /// Dynamic metadata keys to claim names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_metadata_from_claims: BTreeMap<String, String>,
    /// Claims to copy to upstream headers (JWTs only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_to_headers: Vec<ClaimToHeader>,
    /// Default provider behaviour (oneof `Provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Empty>,
    /// Microsoft Entra ID provider (oneof `Provider`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<Azure>,
}

/// The member of [`AccessTokenValidation`]'s `validation_type` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AccessTokenValidationTypeRef<'a> {
    /// `introspectionUrl` (deprecated).
    IntrospectionUrl(&'a str),
    /// `jwt`.
    Jwt(&'a JwtValidation),
    /// `introspection`.
    Introspection(&'a IntrospectionValidation),
}

impl AccessTokenValidation {
    /// The validation type that is set, or an error if more than one is.
    pub fn validation_type(&self) -> Result<Option<AccessTokenValidationTypeRef<'_>>, OneofError> {
        OneofError::check(
            "validation_type",
            &[
                ("introspectionUrl", self.introspection_url.is_some()),
                ("jwt", self.jwt.is_some()),
                ("introspection", self.introspection.is_some()),
            ],
        )?;
        Ok(if let Some(u) = &self.introspection_url {
            Some(AccessTokenValidationTypeRef::IntrospectionUrl(u))
        } else if let Some(j) = &self.jwt {
            Some(AccessTokenValidationTypeRef::Jwt(j))
        } else {
            self.introspection
                .as_ref()
                .map(AccessTokenValidationTypeRef::Introspection)
        })
    }
}

/// A list of scopes (`AccessTokenValidation.ScopeList`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScopeList {
    /// The scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scope: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// API keys
// ---------------------------------------------------------------------------------------------

/// API key auth (`ApiKeyAuth`, oneof `storage_backend`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// Deprecated: labels selecting API key secrets (use `k8sSecretApikeyStorage`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_selector: BTreeMap<String, String>,
    /// Deprecated: API key secrets by reference (use `k8sSecretApikeyStorage`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_key_secret_refs: Vec<ResourceRef>,
    /// Header holding the API key (default `api-key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// Deprecated: headers from API key metadata (use `headersFromMetadataEntry`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_metadata: BTreeMap<String, MetadataEntry>,
    /// Header names to the API key metadata entry they are filled from.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_from_metadata_entry: BTreeMap<String, MetadataEntry>,
    /// Kubernetes secret storage backend.
    #[serde(
        default,
        alias = "k8SSecretApikeyStorage",
        skip_serializing_if = "Option::is_none"
    )]
    pub k8s_secret_apikey_storage: Option<K8sSecretApiKeyStorage>,
    /// Deprecated Aerospike storage backend. Accepted and carried; not interpreted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aerospike_apikey_storage: Option<serde_json::Value>,
    /// Skip data-plane validation of metadata used in headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_metadata_validation: Option<bool>,
    /// Stored keys are HMAC digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<ApiKeyHmac>,
    /// Stored keys are digests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ApiKeyDigest>,
    /// Request headers that must match same-named secret data keys (with `digest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#match: Option<ApiKeyMatch>,
}

/// An API key metadata entry (`ApiKeyAuth.MetadataEntry`, also the deprecated `SecretKey`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataEntry {
    /// The metadata key to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Reject keys without this entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<bool>,
}

/// API keys stored in Kubernetes secrets (`K8sSecretApiKeyStorage`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct K8sSecretApiKeyStorage {
    /// Labels selecting API key secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_selector: BTreeMap<String, String>,
    /// API key secrets by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_key_secret_refs: Vec<ResourceRef>,
}

/// HMAC digest verification of API keys (`ApiKeyHmac`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyHmac {
    /// The HMAC algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<ApiKeyHmacAlgorithm>,
    /// Secret with the shared HMAC key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_secret_ref: Option<ResourceRef>,
}

/// HMAC algorithm (`ApiKeyHmac.Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyHmacAlgorithm {
    /// Unspecified (HMAC-SHA256).
    #[default]
    AlgorithmUnspecified,
    /// HMAC-SHA256.
    HmacSha256,
}

/// Digest verification of API keys (`ApiKeyDigest`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyDigest {
    /// The digest algorithm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<ApiKeyDigestAlgorithm>,
}

/// Digest algorithm (`ApiKeyDigest.Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApiKeyDigestAlgorithm {
    /// Unspecified (SHA256).
    #[default]
    AlgorithmUnspecified,
    /// SHA256.
    Sha256,
}

/// Request headers that must match secret data keys (`ApiKeyMatch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyMatch {
    /// The headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ApiKeyHeaderMatch>,
}

/// A header that must match the same-named secret data key (`HeaderMatch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyHeaderMatch {
    /// Header name (also the secret data key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> AuthConfigSpec {
        let spec: AuthConfigSpec = serde_yaml_ng::from_str(yaml).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<AuthConfigSpec>(&json).unwrap(), spec);
        spec
    }

    // docs/content/guides/security/auth/extauth/basic_auth/_index.md
    #[test]
    fn basic_auth_apr() {
        let s = spec(
            r#"
configs:
- basicAuth:
    apr:
      users:
        user:
          salt: "TYiryv0/"
          hashedPassword: "8BvzLUO9IfGPGGsPnAgSu1"
"#,
        );
        let Ok(Some(AuthConfigRef::BasicAuth(b))) = s.configs[0].auth_config() else {
            panic!("not basic auth");
        };
        let user = &b.apr.as_ref().unwrap().users["user"];
        assert_eq!(user.salt.as_deref(), Some("TYiryv0/"));
        assert_eq!(
            user.hashed_password.as_deref(),
            Some("8BvzLUO9IfGPGGsPnAgSu1")
        );
        assert_eq!(s.config_name(0), "config_0");
    }

    // docs/content/guides/security/auth/extauth/basic_auth/_index.md (extended config)
    #[test]
    fn basic_auth_extended() {
        let s = spec(
            r#"
configs:
- basicAuth:
    encryption:
      sha1: {}
    userList:
      users:
        user:
          salt: "TYiryv0/"
          hashedPassword: "010eb058a59f4ac5ba05639b0263cf91b4345fd6"
"#,
        );
        let b = s.configs[0].basic_auth.as_ref().unwrap();
        assert!(b.encryption.as_ref().unwrap().sha1.is_some());
        assert!(b.user_list.as_ref().unwrap().users.contains_key("user"));
    }

    // docs/content/guides/security/auth/extauth/apikey_auth/_index.md
    #[test]
    fn api_key_auth() {
        let s = spec(
            r#"
configs:
- apiKeyAuth:
    # This is the name of the header that is expected to contain the API key.
    headerName: api-key
    labelSelector:
      team: infrastructure
"#,
        );
        let Ok(Some(AuthConfigRef::ApiKeyAuth(a))) = s.configs[0].auth_config() else {
            panic!("not api key auth");
        };
        assert_eq!(a.header_name.as_deref(), Some("api-key"));
        assert_eq!(a.label_selector["team"], "infrastructure");

        let s = spec(
            r#"
configs:
- name: keys
  apiKeyAuth:
    k8sSecretApikeyStorage:
      labelSelector: {team: infra}
    headersFromMetadataEntry:
      x-user-id: {name: user-id, required: true}
"#,
        );
        let a = s.configs[0].api_key_auth.as_ref().unwrap();
        assert_eq!(
            a.k8s_secret_apikey_storage.as_ref().unwrap().label_selector["team"],
            "infra"
        );
        assert_eq!(
            a.headers_from_metadata_entry["x-user-id"].required,
            Some(true)
        );
        assert_eq!(s.config_name(0), "keys");
    }

    // docs/content/guides/security/auth/extauth/oauth/_index.md
    #[test]
    fn oauth2_oidc_authorization_code() {
        let s = spec(
            r#"
configs:
- oauth2:
    oidcAuthorizationCode:
      appUrl: http://localhost:8080/
      callbackPath: /callback
      clientId: gloo
      clientSecretRef:
        name: oauth
        namespace: gloo-system
      issuerUrl: http://dex.gloo-system.svc.cluster.local:32000/
      scopes:
      - email
      logoutPath: /logout
      frontChannelLogout:
        path: /front_channel_logout
      headers:
        idTokenHeader: "x-token"
      session:
        failOnFetchFailure: true
        cookieOptions:
          notSecure: true
          maxAge: 3600
        redis:
          cookieName: session
          options:
            host: redis.gloo-system.svc.cluster.local:6379
"#,
        );
        let Ok(Some(AuthConfigRef::OAuth2(o))) = s.configs[0].auth_config() else {
            panic!("not oauth2");
        };
        let Ok(Some(OAuth2TypeRef::OidcAuthorizationCode(oidc))) = o.oauth_type() else {
            panic!("not oidc");
        };
        assert_eq!(oidc.client_id.as_deref(), Some("gloo"));
        assert_eq!(oidc.client_secret_ref.as_ref().unwrap().name, "oauth");
        assert_eq!(oidc.scopes, vec!["email"]);
        assert_eq!(oidc.logout_path.as_deref(), Some("/logout"));
        assert_eq!(
            oidc.front_channel_logout.as_ref().unwrap().path.as_deref(),
            Some("/front_channel_logout")
        );
        assert_eq!(
            oidc.headers.as_ref().unwrap().id_token_header.as_deref(),
            Some("x-token")
        );
        let session = oidc.session.as_ref().unwrap();
        assert_eq!(session.fail_on_fetch_failure, Some(true));
        let cookie = session.cookie_options.as_ref().unwrap();
        assert_eq!(cookie.max_age, Some(3600));
        assert_eq!(cookie.not_secure, Some(true));
        let redis = session.redis.as_ref().unwrap();
        assert_eq!(redis.cookie_name.as_deref(), Some("session"));
        assert_eq!(
            redis.options.as_ref().unwrap().host.as_deref(),
            Some("redis.gloo-system.svc.cluster.local:6379")
        );
    }

    // docs/content/guides/security/auth/extauth/oauth/access_token/_index.md
    #[test]
    fn oauth2_access_token_validation() {
        let s = spec(
            r#"
configs:
- oauth2:
    accessTokenValidation:
      introspection:
        introspectionUrl: http://hydra-example-admin.default:4445/admin/oauth2/introspect
        clientId: my-client
        clientSecretRef:
          name: client-secret
          namespace: gloo-system
      dynamicMetadataFromClaims:
        sub: sub
"#,
        );
        let atv = s.configs[0]
            .oauth2
            .as_ref()
            .unwrap()
            .access_token_validation
            .as_ref()
            .unwrap();
        let Ok(Some(AccessTokenValidationTypeRef::Introspection(i))) = atv.validation_type() else {
            panic!("not introspection");
        };
        assert_eq!(i.client_id.as_deref(), Some("my-client"));
        assert_eq!(atv.dynamic_metadata_from_claims["sub"], "sub");
    }

    // docs/content/guides/security/rate_limiting/envoy/_index.md (opaAuth carried as JSON)
    #[test]
    fn opa_auth_is_carried() {
        let s = spec(
            r#"
configs:
  - opaAuth:
      modules:
        - name: allow-jwt
          namespace: gloo-system
      query: "data.test.allow == true"
"#,
        );
        let Ok(Some(AuthConfigRef::OpaAuth(v))) = s.configs[0].auth_config() else {
            panic!("not opa");
        };
        assert_eq!(v["query"], "data.test.allow == true");
    }

    #[test]
    fn ext_auth_extension() {
        let e: ExtAuthExtension =
            serde_yaml_ng::from_str("configRef:\n  name: basic-auth\n  namespace: gloo-system\n")
                .unwrap();
        assert!(
            matches!(e.spec(), Ok(Some(ExtAuthExtensionRef::ConfigRef(r))) if r.name == "basic-auth")
        );
        let e: ExtAuthExtension =
            serde_yaml_ng::from_str("customAuth:\n  contextExtensions:\n    k: v\n  name: other\n")
                .unwrap();
        let Ok(Some(ExtAuthExtensionRef::CustomAuth(c))) = e.spec() else {
            panic!("not custom auth");
        };
        assert_eq!(c.context_extensions["k"], "v");
        let e: ExtAuthExtension =
            serde_yaml_ng::from_str("disable: true\nconfigRef: {name: x}\n").unwrap();
        assert_eq!(e.spec().unwrap_err().set, vec!["disable", "configRef"]);
    }

    #[test]
    fn two_auth_types_is_an_error() {
        let s = spec("configs:\n- basicAuth: {}\n  jwt: {}\n");
        assert_eq!(
            s.configs[0].auth_config().unwrap_err().set,
            vec!["basicAuth", "jwt"]
        );
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<AuthConfigSpec>(
            "configs:\n- oauth2:\n    oidcAuthorizationCode:\n      clientID: x\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("clientID"), "{err}");
    }
}
