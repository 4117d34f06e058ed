//! The identity provider's metadata (OpenID Connect Discovery 1.0) and keys, cached:
//! `<issuerUrl>/.well-known/openid-configuration` is read on first use and again every poll
//! interval (Gloo's `discoveryPollInterval`, 30 minutes by default), the `DiscoveryOverride`
//! applied on top, and the `jwks_uri` read with it. A failed re-poll keeps the last good
//! metadata and keys (retried after [`RETRY_AFTER_FAILURE`]); with nothing cached, a failure
//! is answered at once for [`RETRY_AFTER_FAILURE`] instead of being retried by every request.
//!
//! An ID token signed by a key the cache lacks refetches the JWKS as Gloo's
//! `jwksCacheRefreshPolicy` says: never (the default), always, or at most N times per poll
//! interval.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::Uri;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::{ClientAuth, Idp};
use super::config::{DiscoveryOverride, JwksOnDemandCacheRefreshPolicy};
use super::error::{IdpError, OidcConfigError};
use crate::jwt::jwks::Jwks;

/// Gloo's default `discoveryPollInterval`.
pub(crate) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30 * 60);
/// How long a failed discovery is not retried.
pub(crate) const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// The discovery document fields the flow uses.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    revocation_endpoint: String,
    end_session_endpoint: String,
    token_endpoint_auth_methods_supported: Vec<String>,
    id_token_signing_alg_values_supported: Vec<String>,
}

/// The provider's endpoints and policies, overrides applied.
#[derive(Clone, Debug)]
pub(crate) struct Metadata {
    /// The issuer as discovered (ID tokens must carry exactly this `iss`).
    pub(crate) issuer: String,
    pub(crate) authorization_endpoint: String,
    pub(crate) token_endpoint: Uri,
    pub(crate) jwks_uri: Uri,
    pub(crate) revocation_endpoint: Option<Uri>,
    pub(crate) end_session_endpoint: Option<Uri>,
    pub(crate) client_auth: ClientAuth,
    /// ID token algorithms allowed; empty: any the keys verify.
    pub(crate) id_token_algs: Vec<String>,
}

/// Metadata and keys as of one poll.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) metadata: Metadata,
    pub(crate) jwks: Arc<Jwks>,
}

/// The on-demand JWKS refresh policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnDemand {
    Never,
    Always,
    AtMost(u32),
}

#[derive(Default)]
struct State {
    snapshot: Option<Arc<Snapshot>>,
    /// When to poll again (with a snapshot) or retry (without one).
    next_poll: Option<Instant>,
    last_error: Option<IdpError>,
    /// On-demand JWKS fetches in this poll interval.
    on_demand_used: u32,
}

/// The cache of one issuer's metadata and keys.
pub(crate) struct Discovery {
    idp: Idp,
    issuer_url: String,
    discovery_uri: Uri,
    overrides: DiscoveryOverride,
    poll_interval: Duration,
    on_demand: OnDemand,
    state: RwLock<State>,
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("discovery_uri", &self.discovery_uri)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// An absolute http(s) URI, or an error naming `field`.
pub(crate) fn absolute_uri(field: &str, value: &str) -> Result<Uri, OidcConfigError> {
    let uri: Uri = value
        .parse()
        .map_err(|e| OidcConfigError::new(field, format!("invalid URL {value:?}: {e}")))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(OidcConfigError::new(
            field,
            format!("{value:?} is not an absolute http(s) URL"),
        )),
    }
}

impl Discovery {
    pub(crate) fn new(
        idp: Idp,
        issuer_url: &str,
        overrides: Option<&DiscoveryOverride>,
        poll_interval: Option<Duration>,
        policy: Option<&JwksOnDemandCacheRefreshPolicy>,
    ) -> Result<Self, OidcConfigError> {
        absolute_uri("issuerUrl", issuer_url)?;
        let discovery_uri = absolute_uri(
            "issuerUrl",
            &format!(
                "{}/.well-known/openid-configuration",
                issuer_url.trim_end_matches('/')
            ),
        )?;
        let overrides = overrides.cloned().unwrap_or_default();
        for (field, value) in [
            ("discoveryOverride.authEndpoint", &overrides.auth_endpoint),
            ("discoveryOverride.tokenEndpoint", &overrides.token_endpoint),
            ("discoveryOverride.jwksUri", &overrides.jwks_uri),
            (
                "discoveryOverride.revocationEndpoint",
                &overrides.revocation_endpoint,
            ),
            (
                "discoveryOverride.endSessionEndpoint",
                &overrides.end_session_endpoint,
            ),
        ] {
            if !value.is_empty() {
                absolute_uri(field, value)?;
            }
        }
        let poll_interval = match poll_interval {
            Some(interval) if interval.is_zero() => {
                return Err(OidcConfigError::new(
                    "discoveryPollInterval",
                    "must be greater than zero",
                ))
            }
            Some(interval) => interval,
            None => DEFAULT_POLL_INTERVAL,
        };
        let on_demand = match policy {
            None => OnDemand::Never,
            Some(policy) => match (
                &policy.never,
                &policy.always,
                policy.max_idp_req_per_polling_interval,
            ) {
                (None, None, None) | (Some(_), None, None) => OnDemand::Never,
                (None, Some(_), None) => OnDemand::Always,
                (None, None, Some(n)) => OnDemand::AtMost(n),
                _ => {
                    return Err(OidcConfigError::new(
                        "jwksCacheRefreshPolicy",
                        "only one of never, always and maxIdpReqPerPollingInterval may be set",
                    ))
                }
            },
        };
        Ok(Self {
            idp,
            issuer_url: issuer_url.to_owned(),
            discovery_uri,
            overrides,
            poll_interval,
            on_demand,
            state: RwLock::new(State::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        // A poisoned lock only means a panic elsewhere; the state itself is always whole.
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// What the cache answers now without fetching: a snapshot not due for a poll, or the
    /// last error while failures are not retried; `None`: fetch.
    fn cached(&self, now: Instant) -> Option<Result<Arc<Snapshot>, IdpError>> {
        self.read(|state| {
            let due = state.next_poll.is_none_or(|at| now >= at);
            match (&state.snapshot, &state.last_error) {
                (Some(snapshot), _) if !due => Some(Ok(Arc::clone(snapshot))),
                (None, Some(error)) if !due => Some(Err(error.clone())),
                _ => None,
            }
        })
    }

    /// The current metadata and keys, polling the provider when they are due.
    pub(crate) async fn current(&self) -> Result<Arc<Snapshot>, IdpError> {
        if let Some(answer) = self.cached(Instant::now()) {
            return answer;
        }
        let _one_at_a_time = self.fetch_lock.lock().await;
        if let Some(answer) = self.cached(Instant::now()) {
            return answer;
        }
        let result = self.fetch().await;
        let now = Instant::now();
        self.write(|state| match result {
            Ok(snapshot) => {
                let snapshot = Arc::new(snapshot);
                state.snapshot = Some(Arc::clone(&snapshot));
                state.next_poll = now.checked_add(self.poll_interval);
                state.last_error = None;
                state.on_demand_used = 0;
                Ok(snapshot)
            }
            Err(error) => {
                tracing::warn!(uri = %self.discovery_uri, %error, "OIDC discovery failed");
                state.next_poll = now.checked_add(RETRY_AFTER_FAILURE.min(self.poll_interval));
                match &state.snapshot {
                    Some(snapshot) => Ok(Arc::clone(snapshot)),
                    None => {
                        state.last_error = Some(error.clone());
                        Err(error)
                    }
                }
            }
        })
    }

    /// New keys for a token whose `kid` `seen` lacks, if the policy allows a fetch now; the
    /// snapshot to retry with (possibly one another request already refreshed).
    pub(crate) async fn refresh_keys(&self, seen: &Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        let allowed = self.write(|state| match self.on_demand {
            OnDemand::Never => false,
            OnDemand::Always => true,
            OnDemand::AtMost(limit) => {
                let allowed = state.on_demand_used < limit;
                if allowed {
                    state.on_demand_used += 1;
                }
                allowed
            }
        });
        if !allowed {
            return None;
        }
        let _one_at_a_time = self.fetch_lock.lock().await;
        if let Some(current) = self.read(|state| state.snapshot.clone()) {
            if !Arc::ptr_eq(&current, seen) {
                return Some(current);
            }
        }
        match self.fetch_jwks(&seen.metadata.jwks_uri).await {
            Ok(jwks) => {
                let snapshot = Arc::new(Snapshot {
                    metadata: seen.metadata.clone(),
                    jwks: Arc::new(jwks),
                });
                self.write(|state| state.snapshot = Some(Arc::clone(&snapshot)));
                Some(snapshot)
            }
            Err(error) => {
                tracing::warn!(uri = %seen.metadata.jwks_uri, %error, "OIDC JWKS refetch failed");
                None
            }
        }
    }

    async fn fetch(&self) -> Result<Snapshot, IdpError> {
        let body = self.idp.get_json(&self.discovery_uri).await?;
        let document: DiscoveryDocument = serde_json::from_slice(&body)
            .map_err(|e| IdpError::new(format!("{}: {e}", self.discovery_uri)))?;
        let metadata = self.resolve(document)?;
        let jwks = self.fetch_jwks(&metadata.jwks_uri).await?;
        Ok(Snapshot {
            metadata,
            jwks: Arc::new(jwks),
        })
    }

    async fn fetch_jwks(&self, uri: &Uri) -> Result<Jwks, IdpError> {
        let body = self.idp.get_json(uri).await?;
        Jwks::parse(&body).map_err(|e| IdpError::new(format!("{uri}: {e}")))
    }

    /// The document with the overrides applied, checked.
    fn resolve(&self, document: DiscoveryDocument) -> Result<Metadata, IdpError> {
        let o = &self.overrides;
        let pick = |over: &str, discovered: String| {
            if over.is_empty() {
                discovered
            } else {
                over.to_owned()
            }
        };
        // OpenID Connect Discovery §4.3: the issuer must be the one asked for (a trailing
        // slash aside, as issuers are written both ways in configs).
        if document.issuer.trim_end_matches('/') != self.issuer_url.trim_end_matches('/') {
            return Err(IdpError::new(format!(
                "{}: issuer {:?} does not match issuerUrl {:?}",
                self.discovery_uri, document.issuer, self.issuer_url
            )));
        }
        let endpoint = |name: &str, value: String| -> Result<Uri, IdpError> {
            let uri: Uri = value.parse().map_err(|e| {
                IdpError::new(format!("{}: {name} {value:?}: {e}", self.discovery_uri))
            })?;
            if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
                return Err(IdpError::new(format!(
                    "{}: {name} {value:?} is not an absolute http(s) URL",
                    self.discovery_uri
                )));
            }
            Ok(uri)
        };
        let optional = |name: &str, value: String| {
            if value.is_empty() {
                Ok(None)
            } else {
                endpoint(name, value).map(Some)
            }
        };
        let authorization_endpoint = pick(&o.auth_endpoint, document.authorization_endpoint);
        endpoint("authorization_endpoint", authorization_endpoint.clone())?;
        let methods = if o.auth_methods.is_empty() {
            document.token_endpoint_auth_methods_supported
        } else {
            o.auth_methods.clone()
        };
        let client_auth = if self.idp.client_secret.is_empty() {
            ClientAuth::None
        } else if methods.is_empty() || methods.iter().any(|m| m == "client_secret_basic") {
            // The spec's default when the provider lists none.
            ClientAuth::Basic
        } else if methods.iter().any(|m| m == "client_secret_post") {
            ClientAuth::Post
        } else {
            ClientAuth::Basic
        };
        Ok(Metadata {
            issuer: document.issuer,
            authorization_endpoint,
            token_endpoint: endpoint(
                "token_endpoint",
                pick(&o.token_endpoint, document.token_endpoint),
            )?,
            jwks_uri: endpoint("jwks_uri", pick(&o.jwks_uri, document.jwks_uri))?,
            revocation_endpoint: optional(
                "revocation_endpoint",
                pick(&o.revocation_endpoint, document.revocation_endpoint),
            )?,
            end_session_endpoint: optional(
                "end_session_endpoint",
                pick(&o.end_session_endpoint, document.end_session_endpoint),
            )?,
            client_auth,
            id_token_algs: if o.id_token_algs.is_empty() {
                document.id_token_signing_alg_values_supported
            } else {
                o.id_token_algs.clone()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use http::{Request, Response, StatusCode};
    use serde_json::{json, Value};

    use super::*;
    use crate::extauth::oidc::client::{IdpClient, IdpFuture};

    const ISSUER: &str = "http://idp.test";

    /// An identity provider in memory: serves a discovery document and a JWKS, counts calls.
    #[derive(Default)]
    struct Fake {
        calls: Mutex<Vec<String>>,
        issuer: Mutex<String>,
        down: Mutex<bool>,
    }

    const JWKS: &str =
        r#"{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#;

    impl IdpClient for Arc<Fake> {
        fn send(&self, request: Request<Bytes>) -> IdpFuture {
            let path = request.uri().path().to_owned();
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(path.clone());
            let down = *self.down.lock().unwrap_or_else(|e| e.into_inner());
            let issuer = self
                .issuer
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            Box::pin(async move {
                if down {
                    return Err(IdpError::new("connection refused"));
                }
                let body = match path.as_str() {
                    "/.well-known/openid-configuration" => json!({
                        "issuer": issuer,
                        "authorization_endpoint": format!("{ISSUER}/auth"),
                        "token_endpoint": format!("{ISSUER}/token"),
                        "jwks_uri": format!("{ISSUER}/jwks"),
                        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                    })
                    .to_string(),
                    "/jwks" => JWKS.to_owned(),
                    _ => {
                        return Ok(Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Bytes::new())
                            .unwrap_or_default())
                    }
                };
                Ok(Response::new(Bytes::from(body)))
            })
        }
    }

    fn new_fake() -> Arc<Fake> {
        let fake = Arc::new(Fake::default());
        *fake.issuer.lock().unwrap_or_else(|e| e.into_inner()) = format!("{ISSUER}/");
        fake
    }

    fn calls(fake: &Fake) -> usize {
        fake.calls.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn discovery(fake: &Arc<Fake>, secret: &str, policy: Value) -> Discovery {
        let policy: JwksOnDemandCacheRefreshPolicy =
            serde_json::from_value(policy).expect("policy");
        let overrides = DiscoveryOverride {
            token_endpoint: "http://other.test/token".into(),
            ..DiscoveryOverride::default()
        };
        Discovery::new(
            Idp {
                client: Arc::new(Arc::clone(fake)),
                timeout: Duration::from_secs(1),
                client_id: "app".into(),
                client_secret: secret.into(),
            },
            ISSUER,
            Some(&overrides),
            Some(Duration::from_secs(60)),
            Some(&policy),
        )
        .expect("valid")
    }

    #[tokio::test(start_paused = true)]
    async fn metadata_is_cached_until_the_poll_interval_with_overrides_applied() {
        let fake = new_fake();
        let d = discovery(&fake, "secret", json!({}));
        let first = d.current().await.expect("discovered");
        assert_eq!(calls(&fake), 2, "document and keys");
        assert_eq!(first.metadata.token_endpoint, "http://other.test/token");
        assert_eq!(
            first.metadata.authorization_endpoint,
            format!("{ISSUER}/auth")
        );
        // The provider lists client_secret_post but not _basic.
        assert_eq!(first.metadata.client_auth, ClientAuth::Post);
        d.current().await.expect("cached");
        assert_eq!(calls(&fake), 2);
        tokio::time::advance(Duration::from_secs(61)).await;
        let again = d.current().await.expect("re-polled");
        assert_eq!(calls(&fake), 4);
        assert!(!Arc::ptr_eq(&first, &again));

        // A failed re-poll keeps the last good metadata.
        *fake.down.lock().unwrap_or_else(|e| e.into_inner()) = true;
        tokio::time::advance(Duration::from_secs(61)).await;
        let kept = d.current().await.expect("last good kept");
        assert!(Arc::ptr_eq(&kept, &again));

        // A public client authenticates with its id only.
        let public = discovery(&new_fake(), "", json!({}));
        assert_eq!(
            public.current().await.expect("ok").metadata.client_auth,
            ClientAuth::None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_without_metadata_are_not_retried_by_every_request() {
        let fake = new_fake();
        *fake.down.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let d = discovery(&fake, "secret", json!({}));
        assert!(d.current().await.is_err());
        assert!(d.current().await.is_err());
        assert_eq!(calls(&fake), 1);
        *fake.down.lock().unwrap_or_else(|e| e.into_inner()) = false;
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        assert!(d.current().await.is_ok());

        // Discovery answering for another issuer is refused.
        let other = new_fake();
        *other.issuer.lock().unwrap_or_else(|e| e.into_inner()) = "http://evil.test".into();
        let err = discovery(&other, "secret", json!({}))
            .current()
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not match issuerUrl"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_keys_refetch_the_jwks_as_the_policy_allows() {
        for (policy, expected) in [
            (json!({}), [false, false, false]),
            (json!({"never": {}}), [false, false, false]),
            (json!({"always": {}}), [true, true, true]),
            (
                json!({"maxIdpReqPerPollingInterval": 1}),
                [true, false, true],
            ),
        ] {
            let fake = new_fake();
            let d = discovery(&fake, "secret", policy.clone());
            let mut seen = d.current().await.expect("discovered");
            let mut got = Vec::new();
            for round in 0..3 {
                if round == 2 {
                    // A new poll interval resets the budget.
                    tokio::time::advance(Duration::from_secs(61)).await;
                    seen = d.current().await.expect("re-polled");
                }
                let before = calls(&fake);
                let fresh = d.refresh_keys(&seen).await;
                got.push(fresh.is_some());
                assert_eq!(
                    calls(&fake) - before,
                    usize::from(fresh.is_some()),
                    "{policy}"
                );
                if let Some(fresh) = fresh {
                    seen = fresh;
                }
            }
            assert_eq!(got, expected, "{policy}");
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let idp = || Idp {
            client: Arc::new(new_fake()),
            timeout: Duration::from_secs(1),
            client_id: "app".into(),
            client_secret: String::new(),
        };
        let err = Discovery::new(idp(), "idp.test", None, None, None).unwrap_err();
        assert_eq!(err.field(), "issuerUrl");
        let overrides = DiscoveryOverride {
            jwks_uri: "/relative".into(),
            ..DiscoveryOverride::default()
        };
        let err = Discovery::new(idp(), ISSUER, Some(&overrides), None, None).unwrap_err();
        assert_eq!(err.field(), "discoveryOverride.jwksUri");
        let err = Discovery::new(idp(), ISSUER, None, Some(Duration::ZERO), None).unwrap_err();
        assert_eq!(err.field(), "discoveryPollInterval");
        let both = JwksOnDemandCacheRefreshPolicy {
            never: Some(Default::default()),
            always: Some(Default::default()),
            max_idp_req_per_polling_interval: None,
        };
        let err = Discovery::new(idp(), ISSUER, None, None, Some(&both)).unwrap_err();
        assert_eq!(err.field(), "jwksCacheRefreshPolicy");
    }
}
