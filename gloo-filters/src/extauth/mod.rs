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
//! An `AuthConfig` is a list of named steps checked in order (all must allow), or combined by
//! Gloo's `booleanExpr`. The same evaluation serves the tower layer (in-process) and the
//! ext_authz gRPC service (for a stock Envoy fleet), so both answer alike.
//!
//! The filling of this module (config, steps, layer, service) is work in progress of the
//! filters issue.

mod access_token;
mod apikey;
mod auth_config;
mod basic;
mod body;
mod client;
pub mod config;
mod error;
mod expr;
mod future;
#[cfg(feature = "extauth-grpc")]
pub mod grpc;
mod layer;
mod service;

pub use self::access_token::{AccessTokenValidation, DEFAULT_CACHE_TIMEOUT, DEFAULT_JWKS_REFRESH};
pub use self::apikey::{ApiKeyAuth, DEFAULT_API_KEY_HEADER};
pub use self::auth_config::{AuthConfig, AuthConfigBuilder, BuildOptions};
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

#[cfg(test)]
mod tests;
