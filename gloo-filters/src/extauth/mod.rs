//! External authorization with Gloo's `AuthConfig` semantics (Gloo Enterprise's ext auth
//! server), as a tower middleware and as Envoy's ext_authz gRPC service. Enabled by the
//! `extauth` cargo feature.
//!
//! # Shape
//!
//! An auth step ([`Authorize`]) looks at a [`CheckRequest`] (what Envoy's ext_authz
//! `CheckRequest` carries: method, path, headers, peer, optionally the body) and answers a
//! [`Decision`]: [`Allowed`] (headers to set on the request sent upstream, the user id) or
//! [`Denied`] (the status, headers and body the client gets, e.g. a 401 with
//! `WWW-Authenticate`, or an OIDC 302 to the identity provider).
//!
//! An [`AuthConfig`] is a list of named steps checked in order (all must allow), or combined
//! by Gloo's `booleanExpr`. The same evaluation serves the tower layer ([`ExtAuthLayer`],
//! in-process) and the ext_authz gRPC service (`grpc::ExtAuthzService`, feature
//! `extauth-grpc`, for a stock Envoy fleet), so both answer alike: `tests/extauth_envoy.rs`
//! sends the same requests through Envoy 1.40 with our service and through the layer and
//! compares status, upstream headers, `WWW-Authenticate` and body.
//!
//! # Config
//!
//! [`config::ExtAuthConfig`] is Gloo's `ExtAuthConfig` (`extauth-internal.proto`), the form
//! Gloo's control plane sends its ext auth server with every secret resolved, read from its
//! proto3 JSON ([`config::ExtAuthConfig::from_json`]; unknown fields are errors naming the
//! field path). [`AuthConfig::from_config`] builds it; steps of your own go in through
//! [`AuthConfig::builder`].
//!
//! # Steps and Gloo's answers
//!
//! * [`BasicAuth`] (`basicAuth`, `basicAuthInternal`): APR1-MD5 exactly as Apache's
//!   `htpasswd -m` (checked against hashes `htpasswd` makes at test time) or Gloo's salted
//!   SHA-1. Refused: `401` with `WWW-Authenticate: Basic realm="<realm>"`. User id: the user
//!   name.
//! * [`ApiKeyAuth`] (`apiKeyAuth`): the key in `api-key` (or `headerName`), compared in
//!   constant time; metadata entries become upstream headers. Refused: `401` with
//!   `WWW-Authenticate: API key is missing or invalid`. User id: the key's owner.
//! * [`AccessTokenValidation`] (`oauth2.accessTokenValidationConfig`): the bearer token as a
//!   JWT against a local or remote JWKS (the `jwt` module's parser, key sets and remote
//!   cache), or by RFC 7662 introspection (cached for `cacheTimeout`), optionally the
//!   userinfo endpoint, required scopes and claims to headers. Refused: a bare `403`. User
//!   id: `userIdAttributeName` of the introspection answer.
//! * [`passthrough::PassThroughHttp`], [`passthrough::PassThroughGrpc`]
//!   (`passThroughAuth`): another auth server decides, asked with a `POST` or over Envoy's
//!   ext_authz gRPC protocol (feature `extauth-passthrough-grpc`); see [`passthrough`].
//!   Refused: what that server answers (`403` when it fails, unless `failureModeAllow`).
//! * `ldap::LdapAuth` (`ldap`, `ldapInternal`; feature `extauth-ldap`): basic credentials
//!   bound as the user's DN, group membership read from the user's entry (optionally by a
//!   service account). Refused: `401` (bad credentials), `403` (no allowed group), `500`
//!   (LDAP errors). User id: the user name.
//! * `opa::OpaAuth` (`opaAuth`; feature `extauth-opa`): Rego modules and a query evaluated
//!   in process (regorus) against Gloo's input. Refused: a bare `403`.
//! * The OIDC authorization code flow (`oauth2.oidcAuthorizationCode`) is kept as JSON in
//!   [`config::OAuth2Config::OidcAuthorizationCode`]; building it is an error until the
//!   `oidc` step is wired in. HMAC, plugins, portal, Aerospike key
//!   storage, the plain OAuth2 flow and the `jwt` placeholder step are refused when built,
//!   naming the field.
//!
//! The user id is sent upstream in `x-user-id` (Gloo's `Settings.extauth.userIdHeader`;
//! configurable, or off). An allowed request with no user id loses any `x-user-id` the
//! client sent, as Gloo's sanitize filter strips it in Gloo's Envoy build.
//!
//! # `booleanExpr`
//!
//! Config names (`config_<index>` when unnamed), `!`, `&&`, `||` and parentheses, with the
//! usual precedence (`!`, then `&&`, then `||`), evaluated left to right with
//! short-circuiting; a step the evaluation does not reach does not run. Parse errors name the
//! 1-based position (``booleanExpr: no config is named `x` at position 6 of "a && x"``).
//!
//! # Differences from Gloo Enterprise's ext auth server
//!
//! Gloo's server is closed source; these follow its documentation and API comments, and where
//! those are silent, the choice is stated:
//!
//! * When a `booleanExpr` is false, the answer is the denial of the last step that denied
//!   (a bare `403` when none did, as for `!a` with `a` allowing). Allowed requests get the
//!   headers of every step that allowed, in the order they ran.
//! * `failOnRedirect` turns any final `3xx` denial into a bare `401`.
//! * Access tokens are read from `Authorization: Bearer` only (not from a form body or the
//!   `access_token` query parameter); JWT time claims have a 60 s leeway; keys with no `use`
//!   count as signing keys; only active introspection answers are cached (at most 10,000
//!   tokens), and until the earlier of `cacheTimeout` and the answer's `exp`; the client id
//!   and secret are form-urlencoded before HTTP Basic (RFC 6749 §2.3.1), and a client
//!   without a secret sends its id as the `client_id` form field.
//! * `dynamicMetadataFromClaims` is accepted and ignored (no dynamic metadata is emitted).
//! * `claimsToHeaders` with `append` joins the request's values and the claim with `,` into
//!   one header, which is what Envoy does with an appended ext_authz header.
//! * A step's headers are applied as Envoy applies our ext_authz answer: several values of
//!   one upstream header are joined with `,`; a header for the client with one value
//!   replaces the upstream's, each value of one with several (`set-cookie`) is added.
//! * API key metadata that is not a valid header value adds no header.
//! * A basic auth salt is cut at 8 characters and at `$`, as Apache does.
//! * Requests naming no config, or one the gRPC service does not hold, are denied with `403`.

mod access_token;
mod apikey;
mod auth_config;
mod basic;
mod body;
mod client;
pub mod config;
#[cfg(any(feature = "extauth-passthrough-grpc", feature = "extauth-opa"))]
mod envoy_check;
mod error;
mod expr;
mod future;
#[cfg(feature = "extauth-grpc")]
pub mod grpc;
mod layer;
#[cfg(feature = "extauth-ldap")]
pub mod ldap;
#[cfg(feature = "extauth-opa")]
pub mod opa;
pub mod passthrough;
mod service;

pub use self::access_token::{AccessTokenValidation, DEFAULT_CACHE_TIMEOUT, DEFAULT_JWKS_REFRESH};
pub use self::apikey::{ApiKeyAuth, DEFAULT_API_KEY_HEADER};
pub use self::auth_config::{AuthConfig, AuthConfigBuilder, BuildOptions, DEFAULT_CALL_TIMEOUT};
pub use self::basic::{apr1_md5, salted_sha1_hex, BasicAuth, PasswordHash};
pub use self::body::ExtAuthBody;
pub use self::client::{AuthHttpClient, HttpCallError, HyperAuthClient};
pub use self::error::ConfigError;
pub use self::future::ResponseFuture;
pub use self::layer::{ExtAuthLayer, DEFAULT_USER_ID_HEADER};
pub use self::service::{ExtAuth, ExtAuthDenied};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};

/// A boxed, sendable future, as [`Authorize::authorize`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an auth step sees of a request: Envoy's ext_authz `AttributeContext.HttpRequest`.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The request method.
    pub method: Method,
    /// The request URI as the client sent it (path and query; scheme and authority when
    /// absolute).
    pub uri: Uri,
    /// The request headers (`:authority` is in `host`).
    pub headers: HeaderMap,
    /// `http` or `https`: what the client used (for redirect URLs).
    pub scheme: String,
    /// The host the client asked for (`Host` / `:authority`).
    pub host: String,
    /// The downstream peer, when known.
    pub peer: Option<SocketAddr>,
    /// The request body, when the filter was configured to buffer it; empty otherwise.
    pub body: Bytes,
}

/// A step's (or a whole config's) answer.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Let the request through.
    Allow(Allowed),
    /// Answer the client directly.
    Deny(Denied),
}

/// An allowed request, and what the step adds to it.
#[derive(Debug, Clone, Default)]
pub struct Allowed {
    /// Headers to set (replacing any of the same name) on the request sent upstream.
    pub upstream_headers: HeaderMap,
    /// Headers to remove from the request sent upstream: those the step owns but had no value
    /// for this time (a claim the token lacks), so a client can never supply them itself.
    /// Removal happens before `upstream_headers` are set.
    pub remove_upstream_headers: Vec<http::HeaderName>,
    /// Headers to add to the response the client gets (e.g. a refreshed session cookie).
    pub response_headers: HeaderMap,
    /// The authenticated user, when the step identifies one (Gloo's `userIdHeader` and
    /// `ratelimitBasic`'s authorized limits use it).
    pub user_id: Option<String>,
}

/// A refused request: the answer the client gets instead of the upstream's.
#[derive(Debug, Clone)]
pub struct Denied {
    /// The status: 401 when no credentials were valid, 403 when they were valid but not
    /// enough, 302 for a redirect to an identity provider.
    pub status: StatusCode,
    /// Headers of the answer (`WWW-Authenticate`, `Location`, `Set-Cookie`, ...).
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Denied {
    /// A bodiless answer with `status` and no headers.
    ///
    /// ```
    /// use gloo_filters::extauth::Denied;
    /// use http::StatusCode;
    ///
    /// let denied = Denied::status(StatusCode::FORBIDDEN);
    /// assert_eq!(denied.status, StatusCode::FORBIDDEN);
    /// assert!(denied.body.is_empty());
    /// ```
    pub fn status(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }
}

/// One auth step of an `AuthConfig` (basic auth, API keys, an OAuth2 flow, ...).
///
/// Implement it to plug a custom step (Gloo's `plugin` auth) into a config.
///
/// ```
/// use gloo_filters::extauth::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
/// use http::StatusCode;
///
/// /// Lets in requests that carry `x-team: blue`.
/// struct BlueTeam;
///
/// impl Authorize for BlueTeam {
///     fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
///         Box::pin(async move {
///             if request.headers.get("x-team").is_some_and(|v| v == "blue") {
///                 Decision::Allow(Allowed::default())
///             } else {
///                 Decision::Deny(Denied::status(StatusCode::FORBIDDEN))
///             }
///         })
///     }
/// }
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// Checks `request`.
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision>;
}

#[cfg(feature = "extauth-oidc")]
pub mod oidc;
#[cfg(test)]
mod tests;
