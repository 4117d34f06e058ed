//! JWT verification options: Gloo's `enterprise/options/jwt/jwt.proto`
//! (`jwt.options.gloo.solo.io`), plus `JwksAsyncFetch` from
//! `external/envoy/extensions/filters/http/jwt_authn/v3/config.proto`.
//!
//! A virtual host that requires a JWT signed by Auth0's keys and copies its `email` claim into a
//! header, and a health route that skips the check:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::jwt::{JwksSourceRef, ValidationPolicy};
//! use gloo_core::model::Resource;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
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
//!       jwtStaged:
//!         afterExtAuth:
//!           providers:
//!             auth0:
//!               issuer: https://solo-io.us.auth0.com/
//!               tokenSource:
//!                 headers:
//!                 - header: authorization
//!                   prefix: 'Bearer '
//!               claimsToHeaders:
//!               - claim: email
//!                 header: x-solo-claim-email
//!               jwks:
//!                 remote:
//!                   url: https://solo-io.us.auth0.com/.well-known/jwks.json
//!                   upstreamRef:
//!                     name: auth0-jwks
//!                     namespace: gloo-system
//!     routes:
//!     - matchers:
//!       - exact: /health
//!       directResponseAction:
//!         status: 200
//!       options:
//!         jwtStaged:
//!           afterExtAuth:
//!             disable: true
//! "#;
//! let parsed = parse_str(yaml, "petstore.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! let host = vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?;
//! let staged = host.options.as_ref().and_then(|o| o.jwt_staged.as_deref());
//! let jwt = staged.and_then(|s| s.after_ext_auth.as_ref()).ok_or("no afterExtAuth")?;
//! // Neither `validationPolicy` nor `allowMissingOrFailedJwt`: only valid JWTs pass.
//! assert_eq!(jwt.effective_validation_policy(), ValidationPolicy::RequireValid);
//!
//! let auth0 = &jwt.providers["auth0"];
//! assert_eq!(auth0.issuer.as_deref(), Some("https://solo-io.us.auth0.com/"));
//! assert_eq!(auth0.claims_to_headers[0].header.as_deref(), Some("x-solo-claim-email"));
//! let Some(JwksSourceRef::Remote(remote)) = auth0.jwks.as_ref().ok_or("no jwks")?.source()? else {
//!     panic!("expected a remote JWKS");
//! };
//! assert_eq!(remote.upstream_ref.as_ref().map(|r| r.name.as_str()), Some("auth0-jwks"));
//!
//! let route_jwt = host.routes[0].options.as_ref().and_then(|o| o.jwt_staged.as_deref());
//! let after = route_jwt.and_then(|s| s.after_ext_auth.as_ref()).ok_or("no route jwt")?;
//! assert_eq!(after.disable, Some(true));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::routing::OneofError;
use crate::model::{Duration, ResourceRef};

/// JWT config for a virtual host, split by filter stage (`options.jwtStaged`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtStagedVhostExtension {
    /// Config for the JWT filter that runs before the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_ext_auth: Option<VhostExtension>,
    /// Config for the JWT filter that runs after the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ext_auth: Option<VhostExtension>,
}

/// Per-route JWT providers, split by filter stage (route `options.jwtProvidersStaged`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtStagedRouteProvidersExtension {
    /// Providers for the JWT filter that runs before the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_ext_auth: Option<VhostExtension>,
    /// Providers for the JWT filter that runs after the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ext_auth: Option<VhostExtension>,
}

/// Per-route JWT config, split by filter stage (route `options.jwtStaged`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtStagedRouteExtension {
    /// Config for the JWT filter that runs before the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_ext_auth: Option<RouteExtension>,
    /// Config for the JWT filter that runs after the ext auth filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ext_auth: Option<RouteExtension>,
}

/// JWT providers for a virtual host (`options.jwt`, or one stage of `jwtStaged`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VhostExtension {
    /// Providers by name; a JWT valid for any of them is accepted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, Provider>,
    /// Deprecated: let requests with a missing or failed JWT through (use `validationPolicy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_missing_or_failed_jwt: Option<bool>,
    /// How requests with missing or invalid JWTs are handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_policy: Option<ValidationPolicy>,
}

impl VhostExtension {
    /// The effective validation policy: `allowMissingOrFailedJwt: true` takes precedence.
    pub fn effective_validation_policy(&self) -> ValidationPolicy {
        if self.allow_missing_or_failed_jwt == Some(true) {
            ValidationPolicy::AllowMissingOrFailed
        } else {
            self.validation_policy.unwrap_or_default()
        }
    }
}

/// How JWT validation treats missing or invalid tokens (`VhostExtension.ValidationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ValidationPolicy {
    /// Only requests with a valid JWT succeed.
    #[default]
    RequireValid,
    /// Requests without a JWT succeed; requests with an invalid JWT fail.
    AllowMissing,
    /// Requests succeed even when the JWT is missing or fails verification.
    AllowMissingOrFailed,
}

/// Per-route JWT settings (`RouteExtension`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteExtension {
    /// Disables JWT checks on this route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable: Option<bool>,
}

/// A JWT provider (`Provider`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Provider {
    /// Where the keys that validate JWTs come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// The JWT's `aud` claim must be in this list (when non-empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// The JWT's `iss` claim must match this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Where to find the JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_source: Option<TokenSource>,
    /// Forward the token upstream; when false the header holding it is removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_token: Option<bool>,
    /// Claims to copy to upstream request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_to_headers: Vec<ClaimToHeader>,
    /// Allowed clock skew when checking `exp` / `nbf`, in seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_skew_seconds: Option<u32>,
    /// Dynamic metadata key under which the JWT failure status is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attach_failed_status_to_metadata: Option<String>,
}

/// The source of the JSON Web Key Set (`Jwks`, oneof `jwks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwks {
    /// A remote JWKS server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteJwks>,
    /// An inline JWKS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalJwks>,
}

/// The member of [`Jwks`]'s `jwks` oneof that is set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JwksSourceRef<'a> {
    /// A remote JWKS server.
    Remote(&'a RemoteJwks),
    /// An inline key or key set.
    Local(&'a LocalJwks),
}

impl Jwks {
    /// The JWKS source that is set, or an error if both are.
    pub fn source(&self) -> Result<Option<JwksSourceRef<'_>>, OneofError> {
        OneofError::check(
            "jwks",
            &[
                ("remote", self.remote.is_some()),
                ("local", self.local.is_some()),
            ],
        )?;
        Ok(if let Some(r) = &self.remote {
            Some(JwksSourceRef::Remote(r))
        } else {
            self.local.as_ref().map(JwksSourceRef::Local)
        })
    }
}

/// A remote JWKS server (`RemoteJwks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    /// The URL of the key set; sets the host and path of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The upstream serving the key set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_ref: Option<ResourceRef>,
    /// How long the fetched key set is cached (default 5 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<Duration>,
    /// Fetch the key set in the main thread before the listener is activated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_fetch: Option<JwksAsyncFetch>,
}

/// Asynchronous JWKS fetching (`solo.io.envoy.extensions.filters.http.jwt_authn.v3.JwksAsyncFetch`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwksAsyncFetch {
    /// Activate the listener without waiting for the initial fetch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_listener: Option<bool>,
}

/// An inline key (`LocalJwks`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalJwks {
    /// A JSON web key, key set, or PEM public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where a JWT is found (`TokenSource`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenSource {
    /// Headers to look in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderSource>,
    /// Query parameters to look in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<String>,
}

/// A header holding a JWT (`TokenSource.HeaderSource`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderSource {
    /// The header name, e.g. `authorization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The prefix before the token, e.g. `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// Copies a verified claim to an upstream header (`ClaimToHeader`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// The claim name, e.g. `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The header to copy it to, e.g. `x-sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Append to an existing header instead of replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub append: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    // From docs/content/guides/security/auth/extauth/oauth/auth0/_index.md (`options.jwt`).
    const REMOTE: &str = r#"
providers:
  auth0:
    issuer: https://solo-io.us.auth0.com/
    tokenSource:
      headers:
      - header: Jwt
    claimsToHeaders:
    - claim: email
      header: x-solo-claim-email
    jwks:
      remote:
        url: https://solo-io.us.auth0.com/.well-known/jwks.json
        upstreamRef:
          name: auth0-jwks-upstream
          namespace: gloo-system
"#;

    // From docs/content/guides/security/auth/jwt/claim_routing.md (`options.jwt`).
    const LOCAL: &str = r#"
providers:
  solo:
    tokenSource:
      headers:
      - header: x-token
      queryParams:
      - token
    claimsToHeaders:
    - claim: org
      header: x-company
    issuer: solo.io
    jwks:
      local:
        key: |
          -----BEGIN PUBLIC KEY-----
          MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtnkwSRAoyViwIuoDUiMv
          7QIDAQAB
          -----END PUBLIC KEY-----
"#;

    // From docs/content/guides/security/auth/jwt/route-jwt-policy.md (`jwtStaged`).
    const STAGED: &str = r#"
afterExtAuth:
  providers:
    vhost-gateway-provider:
      issuer: solo.io
      jwks:
        local:
          key: "k"
"#;

    #[test]
    fn parses_remote_jwks_with_claims_to_headers() {
        let v: VhostExtension = serde_yaml_ng::from_str(REMOTE).unwrap();
        let p = &v.providers["auth0"];
        assert_eq!(p.issuer.as_deref(), Some("https://solo-io.us.auth0.com/"));
        assert_eq!(p.claims_to_headers[0].claim.as_deref(), Some("email"));
        assert_eq!(
            p.claims_to_headers[0].header.as_deref(),
            Some("x-solo-claim-email")
        );
        let ts = p.token_source.as_ref().unwrap();
        assert_eq!(ts.headers[0].header.as_deref(), Some("Jwt"));
        match p.jwks.as_ref().unwrap().source().unwrap() {
            Some(JwksSourceRef::Remote(r)) => {
                assert_eq!(
                    r.url.as_deref(),
                    Some("https://solo-io.us.auth0.com/.well-known/jwks.json")
                );
                assert_eq!(r.upstream_ref.as_ref().unwrap().name, "auth0-jwks-upstream");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            v.effective_validation_policy(),
            ValidationPolicy::RequireValid
        );
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<VhostExtension>(&json).unwrap(), v);
    }

    #[test]
    fn parses_local_jwks_and_staged() {
        let v: VhostExtension = serde_yaml_ng::from_str(LOCAL).unwrap();
        let p = &v.providers["solo"];
        assert_eq!(p.token_source.as_ref().unwrap().query_params, vec!["token"]);
        assert!(matches!(
            p.jwks.as_ref().unwrap().source(),
            Ok(Some(JwksSourceRef::Local(l))) if l.key.as_deref().unwrap().contains("BEGIN PUBLIC KEY")
        ));
        let s: JwtStagedVhostExtension = serde_yaml_ng::from_str(STAGED).unwrap();
        assert!(s.before_ext_auth.is_none());
        assert!(s
            .after_ext_auth
            .as_ref()
            .unwrap()
            .providers
            .contains_key("vhost-gateway-provider"));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            serde_json::from_str::<JwtStagedVhostExtension>(&json).unwrap(),
            s
        );
    }

    #[test]
    fn validation_policy_and_oneof_errors() {
        let v: VhostExtension = serde_yaml_ng::from_str(
            "validationPolicy: ALLOW_MISSING\nproviders:\n  p:\n    jwks:\n      remote: {url: x}\n      local: {key: y}\n",
        )
        .unwrap();
        assert_eq!(
            v.effective_validation_policy(),
            ValidationPolicy::AllowMissing
        );
        let err = v.providers["p"]
            .jwks
            .as_ref()
            .unwrap()
            .source()
            .unwrap_err();
        assert_eq!(err.set, vec!["remote", "local"]);
        let r: JwtStagedRouteExtension =
            serde_yaml_ng::from_str("beforeExtAuth:\n  disable: true\n").unwrap();
        assert_eq!(r.before_ext_auth.unwrap().disable, Some(true));
    }

    #[test]
    fn rejects_unknown_field() {
        let err = serde_yaml_ng::from_str::<VhostExtension>("providers:\n  p:\n    issuers: [x]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuers"), "{err}");
    }
}
