//! Gloo's OIDC authorization-code step (`oauth2.oidcAuthorizationCode`), as an
//! [`Authorize`](super::Authorize) step: [`OidcAuthorizationCode`], built from the translated
//! [`OidcAuthorizationCodeConfig`]. Enabled by the `extauth-oidc` cargo feature; Redis
//! sessions by `extauth-oidc-redis`.
//!
//! # The flow
//!
//! * **Discovery.** `<issuerUrl>/.well-known/openid-configuration` and its `jwks_uri` are read
//!   on first use and every `discoveryPollInterval` (30 minutes by default), with the
//!   `discoveryOverride` applied; the discovered `issuer` must be `issuerUrl`. An ID token
//!   signed by a key the cache lacks refetches the keys as `jwksCacheRefreshPolicy` allows
//!   (never by default).
//! * **No session.** A `302` to the `authorization_endpoint` with `response_type=code`,
//!   `client_id`, `redirect_uri` (`appUrl` + `callbackPath`), `scope` (`openid` and
//!   `scopes`), a random `state` and `nonce`, and a PKCE `S256` `code_challenge`, then the
//!   `authEndpointQueryParams`. State, nonce, verifier and the original URL travel in a flow
//!   cookie (`oidc_state`, with the session's prefix) sealed with AES-256-GCM under the step's
//!   flow key, valid 10 minutes. The redirect is a [`Denied`](super::Denied) `302` with
//!   `Location`, so the `AuthConfig` applies `failOnRedirect`.
//! * **Callback** (`callbackPath`, or a request path it matches fully with
//!   `parseCallbackPathAsRegex`). The `state` must equal the flow cookie's (constant-time);
//!   the `code` is exchanged at the `token_endpoint` (`client_secret_basic`, or
//!   `client_secret_post` when the provider lists only that; a public client when
//!   `clientSecret` is empty) with the `code_verifier` and the `tokenEndpointQueryParams`; the
//!   ID token must verify with the provider's keys (the `jwt` module's JWKS reader, `ring`),
//!   carry the discovered `iss`, `aud` = `clientId` (`azp` with several audiences), an unexpired
//!   `exp` and the flow's `nonce`. The session is stored and the browser is sent back (`302`)
//!   to the URL it first asked for.
//! * **Session.** The ID token is verified on every request; a valid one is
//!   [allowed](super::Allowed) with `headers.idTokenHeader` / `accessTokenHeader` (`Bearer `
//!   before a token sent in `Authorization` with `useBearerSchemaForAuthorization`), the
//!   `identityToken` / `accessToken` `claimsToHeaders` (access-token claims only from an access
//!   token that is a JWT signed by the provider) and the `sub` as user id. An expired ID token
//!   is refreshed with the refresh token when refreshing is allowed (cookie sessions: off by
//!   default; Redis: on, and `preExpiryBuffer`, 2 s by default, before it expires), else the
//!   flow starts again, as it does for a session that does not verify (tampered, another key).
//! * **Logout** (`logoutPath`). The session is deleted (Redis key, cookies expired), the
//!   refresh and access tokens are revoked at the `revocation_endpoint` when there is one, and
//!   the browser goes to the `end_session_endpoint` when there is one (`id_token_hint`,
//!   `post_logout_redirect_uri` = `afterLogoutUrl`, `client_id`; with `endSessionProperties`
//!   `PostMethod` the step POSTs these itself) or else straight to `afterLogoutUrl` (default
//!   `appUrl`). `frontChannelLogout.path` does the same but answers `200`.
//!
//! # Sessions
//!
//! `userSession.cookie` (the default): cookies `id_token`, `access_token`, `refresh_token`
//! (`<keyPrefix>_id_token`, ...), each value AES-256-GCM encrypted when `cipherConfig.key` (32
//! bytes) is set. `userSession.redis`: a random 256-bit id in the `__session` cookie (or
//! `cookieName`), the tokens at `<keyPrefix><id>` expiring with the cookie; `headerName` sends
//! the id to the token endpoint on the code exchange. `cookieOptions` as Gloo: `maxAge` (30
//! days; 0: no `Max-Age`), `Secure` unless `notSecure`, `HttpOnly` unless `httpOnly: false`,
//! `path` (`/`; empty: none), `sameSite`, `domain`. `targetDomain` refuses (`403`) hosts that
//! do not domain-match it. With `failOnFetchFailure` a Redis failure answers `503`; without, it
//! starts a new login.
//!
//! Secrets (state, nonce, PKCE verifier, session ids, keys, nonces) come from ring's
//! `SystemRandom`; secrets are compared in constant time.
//!
//! # Differences from Gloo's ext auth server
//!
//! * The identity provider is reached by the default [`HyperIdpClient`] over https (rustls,
//!   trusting the system's CA certificates; Gloo's server uses Go's, which reads the same
//!   files) or http; another transport plugs in through
//!   [`OidcAuthorizationCodeBuilder::idp_client`].
//! * PKCE `S256` is always used (Gloo leaves it to `authEndpointQueryParams` /
//!   `tokenEndpointQueryParams`); a `code_challenge` in `authEndpointQueryParams` turns the
//!   step's own PKCE off, so configs that manage PKCE themselves keep working.
//! * Gloo signs its `state` with the ext auth server's signing key; here the state is random
//!   and the flow cookie is sealed with the flow key ([`OidcAuthorizationCodeBuilder::flow_key`],
//!   random per step unless given: replicas sharing logins need the same key).
//! * `tokenEndpointQueryParams` go in the token request's form body (where `code_verifier`
//!   belongs), not its URL.
//! * With `parseCallbackPathAsRegex` the `redirect_uri` sent is `appUrl` + `callbackPath` as
//!   written; the regex only widens which paths are handled as callbacks.
//! * The discovered `issuer` may differ from `issuerUrl` by a trailing slash.
//! * Logout revokes the refresh token too, not only the access token.
//! * Unreachable identity provider or session store: `503` (Envoy answers an unreachable ext
//!   auth server with its `statusOnError`, 403 by default). A refused callback (IdP error,
//!   wrong or missing state, code not accepted, invalid ID token): `401`.
//! * Headers the step sends upstream replace the request's own; a claim the token lacks leaves
//!   a client-sent header of that name as it was ([`Allowed`](super::Allowed) can only set
//!   headers), so strip such headers before the step when upstreams trust them.
//! * Only one login at a time per browser: a second one started before the first returns
//!   replaces its flow cookie, and the first callback is then refused.
//! * A refresh answer without an ID token fails the refresh (the flow starts again).
//! * Not supported (building fails naming the field): `azure`, `pkJwtClientAuthenticationConfig`,
//!   `autoMapFromMetadata`, `dynamicMetadataFromClaims`, Redis over TLS. `session` (deprecated)
//!   is read only when `userSession` is absent, and its `cipherConfig.keyRef` is refused
//!   (translation resolves keys into `userSession.cipherConfig.key`). `cipherConfig` does not
//!   apply to Redis sessions (as in Gloo). Redis `poolSize` is not used: one multiplexed
//!   connection serves all requests.
//!
//! # Example
//!
//! ```
//! use gloo_filters::extauth::oidc::{OidcAuthorizationCode, OidcAuthorizationCodeConfig};
//!
//! let config = OidcAuthorizationCodeConfig::from_json(r#"{
//!     "clientId": "gloo",
//!     "clientSecret": "s3cr3t",
//!     "issuerUrl": "http://idp.example:9000/",
//!     "appUrl": "https://app.example",
//!     "callbackPath": "/callback",
//!     "logoutPath": "/logout",
//!     "scopes": ["email"],
//!     "headers": {"idTokenHeader": "x-id-token"},
//!     "identityToken": {"claimsToHeaders": [{"claim": "email", "header": "x-email"}]}
//! }"#)?;
//! let step = OidcAuthorizationCode::new(config)?;
//! // `step` implements `Authorize`: hand it to an AuthConfig, or call `authorize` directly.
//! # let _ = step;
//!
//! let bad = OidcAuthorizationCodeConfig::from_json(r#"{"clientId": "gloo", "issuerUrl": "idp",
//!     "appUrl": "https://app.example", "callbackPath": "/cb"}"#)?;
//! assert_eq!(
//!     OidcAuthorizationCode::new(bad).unwrap_err().to_string(),
//!     r#"issuerUrl: "idp" is not an absolute http(s) URL"#
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client;
mod config;
mod cookies;
mod crypto;
mod discovery;
mod error;
mod flow;
mod session;
mod tokens;

pub use self::client::{HyperIdpClient, IdpClient, IdpFuture};
pub use self::config::{
    AutoMapFromMetadata, Azure, CipherConfig, CipherConfigRef, ClaimToHeader, CookieOptions,
    DiscoveryOverride, Empty, EndSessionMethod, EndSessionProperties, FrontChannelLogout,
    HeaderConfiguration, InternalSession, JwksOnDemandCacheRefreshPolicy,
    OidcAuthorizationCodeConfig, PkJwtClientAuthenticationConfig, RedisOptions, RedisSession,
    ResourceRef, SameSite, SocketType, TokenClaimsToHeaders, UserSession, UserSessionConfig,
};
pub use self::error::{IdpError, OidcConfigError};
pub use self::flow::{
    OidcAuthorizationCode, OidcAuthorizationCodeBuilder, DEFAULT_IDP_TIMEOUT, DEFAULT_REDIS_TIMEOUT,
};
