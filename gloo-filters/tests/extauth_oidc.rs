//! The OIDC authorization-code step against a real OpenID Provider (panva's oidc-provider 8,
//! `GLOO_TEST_OIDC_NODE_PATH`) and a real Redis (`GLOO_TEST_REDIS_SERVER`).
//!
//! A test "browser" with a cookie jar drives the whole flow: the first request to the app
//! (the step's `authorize`) is redirected to the provider, the provider's login and consent
//! forms (devInteractions) are submitted over HTTP, the provider redirects back to the
//! callback (the step again), and the session then lets requests through. The provider
//! requires PKCE (S256) and checks the client secret, the redirect URI and the code.

mod support {
    pub mod oidc_browser;
    pub mod oidc_provider;
    #[allow(dead_code)] // each test binary uses part of the helper
    pub mod redis_server;
}

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gloo_filters::extauth::oidc::{OidcAuthorizationCode, OidcAuthorizationCodeConfig};
use gloo_filters::extauth::{Allowed, Authorize, CheckRequest, Decision, Denied};
use http::header::{COOKIE, LOCATION};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use serde_json::{json, Value};

use support::oidc_browser::{absolute, form, set_cookies, Browser};
use support::oidc_provider::OidcProvider;
use support::redis_server::RedisServer;

const APP: &str = "https://app.example";
const CALLBACK: &str = "https://app.example/callback";
const AFTER_LOGOUT: &str = "https://app.example/bye";
const CIPHER_KEY: &str = "0123456789abcdef0123456789abcdef";

/// The provider's clients: `app` (opaque access tokens), `short-app` (ID tokens valid 3 s),
/// `app-jwt` (JWT access tokens).
fn provider() -> OidcProvider {
    let client = |id: &str| {
        json!({
            "client_id": id,
            "client_secret": format!("{id}-secret"),
            "redirect_uris": [CALLBACK],
            "post_logout_redirect_uris": [AFTER_LOGOUT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        })
    };
    OidcProvider::start(&json!([
        client("app"),
        client("short-app"),
        client("app-jwt")
    ]))
}

/// A step config for `client` at `issuer`, with `extra` merged in.
fn config(issuer: &str, client: &str, extra: Value) -> OidcAuthorizationCodeConfig {
    let mut config = json!({
        "clientId": client,
        "clientSecret": format!("{client}-secret"),
        "issuerUrl": issuer,
        "appUrl": APP,
        "callbackPath": "/callback",
        "scopes": ["email"],
    });
    if let (Value::Object(config), Value::Object(extra)) = (&mut config, extra) {
        config.extend(extra);
    }
    OidcAuthorizationCodeConfig::from_value(config).expect("valid config")
}

fn step(config: OidcAuthorizationCodeConfig) -> OidcAuthorizationCode {
    OidcAuthorizationCode::new(config).expect("step builds")
}

/// What a whole login went through.
struct Login {
    /// The step's first answer (the redirect to the provider).
    redirect: Denied,
    /// The callback URL the provider sent the browser to.
    callback: String,
    /// The step's answer to the callback.
    after_callback: Denied,
}

fn query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn location(denied: &Denied) -> String {
    denied
        .headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn denied(decision: Decision) -> Denied {
    match decision {
        Decision::Deny(denied) => denied,
        Decision::Allow(allowed) => panic!("expected a refusal, got {allowed:?}"),
    }
}

fn allowed(decision: Decision) -> Allowed {
    match decision {
        Decision::Allow(allowed) => allowed,
        Decision::Deny(denied) => panic!(
            "expected the request allowed, got {} {:?} {:?}",
            denied.status, denied.headers, denied.body
        ),
    }
}

/// The step answered by starting a login at `issuer`.
fn assert_login_starts(decision: Decision, issuer: &str) {
    let denied = denied(decision);
    assert_eq!(denied.status, StatusCode::FOUND, "{denied:?}");
    let to = location(&denied);
    assert!(to.starts_with(&format!("{issuer}/auth?")), "{to}");
}

fn header(allowed: &Allowed, name: &str) -> String {
    allowed
        .upstream_headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The payload of a JWT, decoded (no verification: the test only reads it).
fn jwt_payload(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

impl Browser {
    fn app_cookie(&self, name: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|c| c.host == "app.example" && c.name == name)
            .map(|c| c.value.clone())
    }

    fn set_app_cookie(&mut self, name: &str, value: &str) {
        for cookie in &mut self.jar {
            if cookie.host == "app.example" && cookie.name == name {
                cookie.value = value.to_owned();
            }
        }
    }

    /// A request to the app: the step's decision (its cookies stored).
    async fn app(&mut self, step: &OidcAuthorizationCode, url: &str) -> Decision {
        self.app_with(step, url, HeaderMap::new()).await
    }

    async fn app_with(
        &mut self,
        step: &OidcAuthorizationCode,
        url: &str,
        mut headers: HeaderMap,
    ) -> Decision {
        let uri: Uri = url.parse().expect("app URL");
        if let Some(cookies) = self.cookie_header(&uri) {
            headers.insert(COOKIE, cookies);
        }
        let request = CheckRequest {
            method: Method::GET,
            uri: uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .expect("path"),
            headers,
            scheme: "https".to_owned(),
            host: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
            ..CheckRequest::default()
        };
        let decision = step.authorize(&request).await;
        match &decision {
            Decision::Allow(allowed) => self.store(&uri, &allowed.response_headers),
            Decision::Deny(denied) => self.store(&uri, &denied.headers),
        }
        decision
    }

    /// The whole login from a first request to `url` up to the callback's answer.
    async fn login(&mut self, step: &OidcAuthorizationCode, url: &str, user: &str) -> Login {
        let redirect = denied(self.app(step, url).await);
        assert_eq!(redirect.status, StatusCode::FOUND, "{redirect:?}");
        let callback = self.at_provider(&location(&redirect), user, APP).await;
        let after_callback = denied(self.app(step, &callback).await);
        Login {
            redirect,
            callback,
            after_callback,
        }
    }

    /// Introspects `token` at the provider as `client`: is it active?
    async fn active(&mut self, issuer: &str, client: &str, token: &str) -> bool {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("token", token),
                ("client_id", client),
                ("client_secret", &format!("{client}-secret")),
            ])
            .finish();
        let (status, _, body) = self
            .fetch(&format!("{issuer}/token/introspection"), Some(form))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        answer["active"] == Value::Bool(true)
    }
}

#[tokio::test]
async fn the_browser_flow_ends_in_a_session_that_sends_tokens_and_claims_upstream() {
    let idp = provider();
    let issuer = idp.issuer();
    let step = step(config(
        &issuer,
        "app",
        json!({
            "headers": {"idTokenHeader": "x-id-token", "accessTokenHeader": "authorization",
                        "useBearerSchemaForAuthorization": true},
            "identityToken": {"claimsToHeaders": [
                {"claim": "email", "header": "x-email"},
                {"claim": "email_verified", "header": "x-verified"},
                {"claim": "sub", "header": "x-user", "append": true},
            ]},
        }),
    ));
    let mut browser = Browser::new();
    let login = browser
        .login(&step, "https://app.example/private?x=1", "alice")
        .await;

    // The redirect to the provider: Gloo's parameters, random state and nonce, PKCE S256.
    let auth = location(&login.redirect);
    assert!(auth.starts_with(&format!("{issuer}/auth?")), "{auth}");
    assert_eq!(param(&auth, "response_type").as_deref(), Some("code"));
    assert_eq!(param(&auth, "client_id").as_deref(), Some("app"));
    assert_eq!(param(&auth, "redirect_uri").as_deref(), Some(CALLBACK));
    assert_eq!(param(&auth, "scope").as_deref(), Some("openid email"));
    assert_eq!(
        param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    for name in ["state", "nonce", "code_challenge"] {
        assert_eq!(
            param(&auth, name).map(|v| v.len()),
            Some(43),
            "{name} in {auth}"
        );
    }
    let flow_cookie = set_cookies(&login.redirect.headers).join("\n");
    assert!(
        flow_cookie.starts_with("oidc_state=")
            && flow_cookie.contains("; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{flow_cookie}"
    );
    // The provider came back with a code and our state.
    assert_eq!(param(&login.callback, "state"), param(&auth, "state"));

    // The callback: a session in cookies, the flow cookie cleared, back to the original URL.
    assert_eq!(login.after_callback.status, StatusCode::FOUND);
    assert_eq!(
        location(&login.after_callback),
        "https://app.example/private?x=1"
    );
    let cookies = set_cookies(&login.after_callback.headers);
    for name in ["id_token", "access_token", "refresh_token"] {
        assert!(
            cookies.iter().any(|c| c.starts_with(&format!("{name}="))
                && c.ends_with("; Max-Age=2592000; Path=/; Secure; HttpOnly")),
            "{name} cookie in {cookies:?}"
        );
    }
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("oidc_state=; Max-Age=0")),
        "{cookies:?}"
    );

    // With the session: allowed, tokens and claims upstream.
    let mut headers = HeaderMap::new();
    headers.insert("x-user", HeaderValue::from_static("from-client"));
    let ok = allowed(
        browser
            .app_with(&step, "https://app.example/private?x=1", headers)
            .await,
    );
    let id_token = header(&ok, "x-id-token");
    assert_eq!(Some(id_token.clone()), browser.app_cookie("id_token"));
    let claims = jwt_payload(&id_token);
    assert_eq!(
        (claims["sub"].as_str(), claims["aud"].as_str()),
        (Some("alice"), Some("app"))
    );
    assert_eq!(claims["iss"].as_str(), Some(issuer.as_str()));
    let access_token = browser
        .app_cookie("access_token")
        .expect("access token cookie");
    assert_eq!(
        header(&ok, "authorization"),
        format!("Bearer {access_token}")
    );
    assert_eq!(header(&ok, "x-email"), "alice@example.com");
    assert_eq!(header(&ok, "x-verified"), "true");
    let users: Vec<_> = ok.upstream_headers.get_all("x-user").iter().collect();
    assert_eq!(users, ["from-client", "alice"]);
    assert_eq!(ok.user_id.as_deref(), Some("alice"));
    assert!(ok.response_headers.is_empty(), "{:?}", ok.response_headers);
    assert!(browser.active(&issuer, "app", &access_token).await);

    // A second login starts with fresh randoms.
    let again = location(&denied(Browser::new().app(&step, APP).await));
    for name in ["state", "nonce", "code_challenge"] {
        assert_ne!(param(&again, name), param(&auth, name), "{name}");
    }
}

#[tokio::test]
async fn callbacks_with_a_wrong_state_or_without_a_login_are_refused() {
    let idp = provider();
    let step = step(config(&idp.issuer(), "app", json!({})));
    let mut browser = Browser::new();
    let first = denied(browser.app(&step, "https://app.example/a").await);
    let callback = browser.at_provider(&location(&first), "bob", APP).await;
    let code = param(&callback, "code").expect("code");
    let state = param(&callback, "state").expect("state");

    // Another state (an attacker's callback) is refused; the login stays usable.
    let mut forged = state.clone().into_bytes();
    forged[0] = if forged[0] == b'A' { b'B' } else { b'A' };
    let forged = format!(
        "{CALLBACK}?code={code}&state={}",
        String::from_utf8(forged).expect("ascii")
    );
    let refused = denied(browser.app(&step, &forged).await);
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(set_cookies(&refused.headers).is_empty());
    // A browser that started no login cannot use the callback.
    let stranger = denied(Browser::new().app(&step, &callback).await);
    assert_eq!(stranger.status, StatusCode::UNAUTHORIZED);
    // A callback without code and state, and the provider's error, are refused too.
    assert_eq!(
        denied(browser.app(&step, CALLBACK).await).status,
        StatusCode::UNAUTHORIZED
    );
    let error = format!("{CALLBACK}?error=access_denied&state={state}");
    assert_eq!(
        denied(browser.app(&step, &error).await).status,
        StatusCode::UNAUTHORIZED
    );

    // The right callback still works, once.
    let done = denied(browser.app(&step, &callback).await);
    assert_eq!(
        (done.status, location(&done)),
        (StatusCode::FOUND, "https://app.example/a".to_owned())
    );
    allowed(browser.app(&step, "https://app.example/a").await);
    let replay = denied(browser.app(&step, &callback).await);
    assert_eq!(
        replay.status,
        StatusCode::UNAUTHORIZED,
        "the flow cookie is gone after use"
    );

    // A code minted for another nonce (an injected authorization response: same state and
    // PKCE challenge as the login in progress) is refused when the ID token's nonce differs.
    let mut browser = Browser::new();
    let started = location(&denied(browser.app(&step, APP).await));
    let nonce = param(&started, "nonce").expect("nonce");
    let injected = started.replace(&format!("nonce={nonce}"), "nonce=someone-elses");
    assert_ne!(injected, started);
    let callback = browser.at_provider(&injected, "bob", APP).await;
    let refused = denied(browser.app(&step, &callback).await);
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body, "the ID token is not valid");
}

#[tokio::test]
async fn tampered_session_cookies_start_a_new_login() {
    let idp = provider();
    let issuer = idp.issuer();

    // Tokens stored as they are (Gloo's default): a changed ID token no longer verifies.
    let plain = step(config(
        &issuer,
        "app",
        json!({"userSession": {"cookie": {"keyPrefix": "plain"}}}),
    ));
    let mut browser = Browser::new();
    browser.login(&plain, APP, "carol").await;
    allowed(browser.app(&plain, APP).await);
    let id_token = browser
        .app_cookie("plain_id_token")
        .expect("prefixed cookie");
    let mut parts: Vec<String> = id_token.split('.').map(str::to_owned).collect();
    let mut payload = jwt_payload(&id_token);
    payload["sub"] = json!("mallory");
    parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
    browser.set_app_cookie("plain_id_token", &parts.join("."));
    assert_login_starts(browser.app(&plain, APP).await, &issuer);

    // Encrypted cookies (cipherConfig): the tokens are not readable, and any change (a
    // flipped character, values swapped between cookies, another key) voids the session.
    let sealed_config = json!({"userSession": {"cipherConfig": {"key": CIPHER_KEY}}});
    let sealed = step(config(&issuer, "app", sealed_config.clone()));
    let mut browser = Browser::new();
    browser.login(&sealed, APP, "carol").await;
    let ok = allowed(browser.app(&sealed, APP).await);
    assert_eq!(ok.user_id.as_deref(), Some("carol"));
    let id_cookie = browser.app_cookie("id_token").expect("cookie");
    let access_cookie = browser.app_cookie("access_token").expect("cookie");
    assert!(
        !id_cookie.contains('.') && !id_cookie.starts_with("eyJ"),
        "{id_cookie}"
    );

    // Another step with the same key reads the session (replicas share the key)...
    let replica = step(config(&issuer, "app", sealed_config));
    allowed(browser.app(&replica, APP).await);
    // ...one with another key does not.
    let other_key = step(config(
        &issuer,
        "app",
        json!({"userSession": {"cipherConfig": {"key": "ffffffffffffffffffffffffffffffff"}}}),
    ));
    assert_login_starts(browser.app(&other_key, APP).await, &issuer);

    let mut flipped = id_cookie.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    browser.set_app_cookie("id_token", &String::from_utf8(flipped).expect("ascii"));
    assert_login_starts(browser.app(&sealed, APP).await, &issuer);
    browser.set_app_cookie("id_token", &access_cookie);
    assert_login_starts(browser.app(&sealed, APP).await, &issuer);
    browser.set_app_cookie("id_token", &id_cookie);
    allowed(browser.app(&sealed, APP).await);
}

#[tokio::test]
async fn an_expired_id_token_is_refreshed_only_when_allowed() {
    let idp = provider();
    let issuer = idp.issuer();
    let refreshing = step(config(
        &issuer,
        "short-app",
        json!({"headers": {"idTokenHeader": "x-id-token"},
               "userSession": {"cookie": {"allowRefreshing": true, "keyPrefix": "r"}}}),
    ));
    let not_refreshing = step(config(
        &issuer,
        "short-app",
        json!({"userSession": {"cookie": {"keyPrefix": "n"}}}),
    ));
    let mut browser = Browser::new();
    browser.login(&refreshing, APP, "dave").await;
    browser.login(&not_refreshing, APP, "dave").await;
    let before = header(&allowed(browser.app(&refreshing, APP).await), "x-id-token");
    allowed(browser.app(&not_refreshing, APP).await);
    assert!(
        browser.app_cookie("r_refresh_token").is_some(),
        "the login brought a refresh token"
    );

    // The provider's ID tokens for this client live 3 seconds.
    let exp = jwt_payload(&before)["exp"].as_u64().expect("exp");
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let refreshed = allowed(browser.app(&refreshing, APP).await);
    let after = header(&refreshed, "x-id-token");
    assert_ne!(after, before);
    assert!(jwt_payload(&after)["exp"].as_u64() > Some(exp));
    assert_eq!(jwt_payload(&after)["sub"], json!("dave"));
    let cookies = set_cookies(&refreshed.response_headers);
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("r_id_token={after};"))),
        "{cookies:?}"
    );
    // The new session is in the browser now: no further refresh.
    assert_eq!(browser.app_cookie("r_id_token"), Some(after.clone()));
    let next = allowed(browser.app(&refreshing, APP).await);
    assert_eq!(header(&next, "x-id-token"), after);
    assert!(next.response_headers.is_empty());
    // The refresh token (rotated or kept by the provider) stays in the session.
    assert!(browser.app_cookie("r_refresh_token").is_some());

    // Without allowRefreshing an expired session logs in again.
    assert_login_starts(browser.app(&not_refreshing, APP).await, &issuer);
}

#[tokio::test]
async fn logout_revokes_the_tokens_clears_the_session_and_ends_the_provider_session() {
    let idp = provider();
    let issuer = idp.issuer();
    let step = step(config(
        &issuer,
        "app",
        json!({"logoutPath": "/logout", "afterLogoutUrl": AFTER_LOGOUT,
               "headers": {"accessTokenHeader": "x-access-token", "idTokenHeader": "x-id-token"}}),
    ));
    let mut browser = Browser::new();
    browser.login(&step, APP, "erin").await;
    let ok = allowed(browser.app(&step, APP).await);
    let access_token = header(&ok, "x-access-token");
    let id_token = header(&ok, "x-id-token");
    let refresh_token = browser.app_cookie("refresh_token").expect("refresh token");
    assert!(browser.active(&issuer, "app", &access_token).await);
    assert!(browser.active(&issuer, "app", &refresh_token).await);

    let logout = denied(browser.app(&step, "https://app.example/logout").await);
    assert_eq!(logout.status, StatusCode::FOUND);
    let end = location(&logout);
    assert!(end.starts_with(&format!("{issuer}/session/end?")), "{end}");
    assert_eq!(param(&end, "id_token_hint"), Some(id_token));
    assert_eq!(
        param(&end, "post_logout_redirect_uri").as_deref(),
        Some(AFTER_LOGOUT)
    );
    assert_eq!(param(&end, "client_id").as_deref(), Some("app"));
    let cookies = set_cookies(&logout.headers);
    for name in ["id_token", "access_token", "refresh_token"] {
        assert!(
            cookies
                .iter()
                .any(|c| c.starts_with(&format!("{name}=; Max-Age=0"))),
            "{cookies:?}"
        );
    }
    assert!(browser.app_cookie("id_token").is_none());
    // Revoked at the provider.
    assert!(!browser.active(&issuer, "app", &access_token).await);
    assert!(!browser.active(&issuer, "app", &refresh_token).await);
    // The app logs in again.
    assert_login_starts(browser.app(&step, APP).await, &issuer);

    // The provider accepts the end-session request and, once confirmed, sends the browser to
    // afterLogoutUrl.
    let (status, _, page) = browser.fetch(&end, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (action, mut fields) = form(&page);
    fields.push(("logout".into(), "yes".into()));
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let (status, headers, body) = browser.fetch(&absolute(&issuer, &action), Some(form)).await;
    assert!(status.is_redirection(), "{status} {body}");
    assert_eq!(headers[LOCATION], AFTER_LOGOUT);
}

#[tokio::test]
async fn claims_of_a_jwt_access_token_go_upstream() {
    let idp = provider();
    let step = step(config(
        &idp.issuer(),
        "app-jwt",
        json!({"accessToken": {"claimsToHeaders": [
                   {"claim": "client_id", "header": "x-client"},
                   {"claim": "aud", "header": "x-audience"}]},
               "identityToken": {"claimsToHeaders": [{"claim": "sub", "header": "x-sub"}]}}),
    ));
    let mut browser = Browser::new();
    browser.login(&step, APP, "frank").await;
    let ok = allowed(browser.app(&step, APP).await);
    assert_eq!(header(&ok, "x-client"), "app-jwt");
    assert_eq!(header(&ok, "x-audience"), "https://api.example");
    assert_eq!(header(&ok, "x-sub"), "frank");

    // An opaque access token (client `app`) has no claims to copy.
    let opaque = self::step(config(
        &idp.issuer(),
        "app",
        json!({"accessToken": {"claimsToHeaders": [{"claim": "client_id", "header": "x-client"}]}}),
    ));
    let mut browser = Browser::new();
    browser.login(&opaque, APP, "frank").await;
    let ok = allowed(browser.app(&opaque, APP).await);
    assert!(ok.upstream_headers.get("x-client").is_none());
}

#[tokio::test]
async fn redis_sessions_keep_only_an_id_in_the_cookie() {
    let idp = provider();
    let issuer = idp.issuer();
    let mut redis = RedisServer::start();
    let session = |fail: bool, buffer: &str| {
        json!({"failOnFetchFailure": fail,
               "redis": {"options": {"host": format!("127.0.0.1:{}", redis.port())},
                         "keyPrefix": "oidc:", "cookieName": "sid", "headerName": "x-session-id",
                         "preExpiryBuffer": buffer}})
    };
    let step = step(config(
        &issuer,
        "app",
        json!({"logoutPath": "/logout", "headers": {"idTokenHeader": "x-id-token"},
               "userSession": session(true, "2s")}),
    ));
    let mut browser = Browser::new();
    let login = browser.login(&step, APP, "grace").await;
    let cookies = set_cookies(&login.after_callback.headers);
    assert!(
        cookies.iter().all(|c| !c.starts_with("id_token")),
        "{cookies:?}"
    );
    let sid = browser.app_cookie("sid").expect("session cookie");
    assert_eq!(sid.len(), 43);
    let flow = set_cookies(&login.redirect.headers).join("");
    assert!(flow.starts_with("sid_oidc_state="), "{flow}");

    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("oidc:{sid}"))
        .query_async(&mut connection)
        .await
        .expect("GET");
    let stored: Value =
        serde_json::from_str(&stored.expect("the session is in Redis")).expect("JSON");
    let ok = allowed(browser.app(&step, APP).await);
    assert_eq!(
        stored["id_token"].as_str(),
        Some(header(&ok, "x-id-token").as_str())
    );
    let ttl: i64 = redis::cmd("TTL")
        .arg(format!("oidc:{sid}"))
        .query_async(&mut connection)
        .await
        .expect("TTL");
    assert!(
        (2_591_000..=2_592_000).contains(&ttl),
        "expires with the cookie: {ttl}"
    );

    // An unknown session id starts a new login.
    let mut stranger = Browser::new();
    stranger.jar = browser.jar.clone();
    stranger.set_app_cookie("sid", "A".repeat(43).as_str());
    assert_login_starts(stranger.app(&step, APP).await, &issuer);

    // preExpiryBuffer longer than the token's life: every request refreshes, same session id.
    let eager = self::step(config(
        &issuer,
        "app",
        json!({"headers": {"idTokenHeader": "x-id-token"}, "userSession": session(true, "7200s")}),
    ));
    let first = allowed(browser.app(&eager, APP).await);
    assert_eq!(
        set_cookies(&first.response_headers)
            .first()
            .map(|c| c.starts_with(&format!("sid={sid};"))),
        Some(true)
    );
    let stored: Option<String> = redis::cmd("GET")
        .arg(format!("oidc:{sid}"))
        .query_async(&mut connection)
        .await
        .expect("GET");
    let stored: Value = serde_json::from_str(&stored.expect("still stored")).expect("JSON");
    assert_eq!(
        stored["id_token"].as_str(),
        Some(header(&first, "x-id-token").as_str())
    );
    assert_ne!(header(&first, "x-id-token"), header(&ok, "x-id-token"));

    // Logout deletes the Redis entry and the cookie.
    let logout = denied(browser.app(&step, "https://app.example/logout").await);
    assert_eq!(logout.status, StatusCode::FOUND);
    assert!(set_cookies(&logout.headers)
        .iter()
        .any(|c| c.starts_with("sid=; Max-Age=0")));
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("oidc:{sid}"))
        .query_async(&mut connection)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0);

    // Redis down: failOnFetchFailure refuses (503), otherwise a new login starts.
    browser.login(&step, APP, "grace").await;
    let lenient = self::step(config(
        &issuer,
        "app",
        json!({"userSession": session(false, "2s")}),
    ));
    redis.kill();
    assert_eq!(
        denied(browser.app(&step, APP).await).status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_login_starts(browser.app(&lenient, APP).await, &issuer);
}

#[tokio::test]
async fn discovery_overrides_and_an_unreachable_provider() {
    let idp = provider();
    let issuer = idp.issuer();
    // The override wins over the discovered endpoint.
    let overridden = step(config(
        &issuer,
        "app",
        json!({"discoveryOverride": {"authEndpoint": "https://login.example/authorize?tenant=t"},
               "authEndpointQueryParams": {"prompt": "login", "scope": "openid profile"}}),
    ));
    let redirect = location(&denied(Browser::new().app(&overridden, APP).await));
    assert!(
        redirect.starts_with("https://login.example/authorize?tenant=t&response_type=code&"),
        "{redirect}"
    );
    // Extra parameters are added, and replace a standard one of the same name.
    assert_eq!(param(&redirect, "prompt").as_deref(), Some("login"));
    assert_eq!(param(&redirect, "scope").as_deref(), Some("openid profile"));
    assert_eq!(
        query(&redirect)
            .iter()
            .filter(|(n, _)| n == "scope")
            .count(),
        1
    );

    // A config that manages PKCE itself gets no challenge of ours, and no verifier is sent.
    let own_pkce = step(config(
        &issuer,
        "app",
        json!({"authEndpointQueryParams": {"code_challenge": "abc", "code_challenge_method": "plain"}}),
    ));
    let redirect = location(&denied(Browser::new().app(&own_pkce, APP).await));
    assert_eq!(param(&redirect, "code_challenge").as_deref(), Some("abc"));
    assert_eq!(
        param(&redirect, "code_challenge_method").as_deref(),
        Some("plain")
    );

    // An issuer that does not answer: 503, not a redirect.
    drop(idp);
    let gone = step(config(&issuer, "app", json!({})));
    let answer = denied(Browser::new().app(&gone, APP).await);
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn front_channel_logout_post_end_session_and_target_domain() {
    let idp = provider();
    let issuer = idp.issuer();
    let step = step(config(
        &issuer,
        "app",
        json!({"logoutPath": "/logout", "afterLogoutUrl": "/bye",
               "frontChannelLogout": {"path": "/front-channel-logout"},
               "endSessionProperties": {"methodType": "PostMethod"},
               "userSession": {"cookie": {"targetDomain": "app.example"}}}),
    ));
    // Another host is refused outright.
    let other = denied(Browser::new().app(&step, "https://other.example/").await);
    assert_eq!(other.status, StatusCode::FORBIDDEN);

    // Front-channel logout: the session ends, the answer is a plain 200.
    let mut browser = Browser::new();
    browser.login(&step, APP, "heidi").await;
    let access_token = browser.app_cookie("access_token").expect("access token");
    allowed(browser.app(&step, APP).await);
    let front = denied(
        browser
            .app(&step, "https://app.example/front-channel-logout")
            .await,
    );
    assert_eq!(front.status, StatusCode::OK);
    assert!(set_cookies(&front.headers)
        .iter()
        .any(|c| c.starts_with("id_token=; Max-Age=0")));
    assert!(!browser.active(&issuer, "app", &access_token).await);
    assert_login_starts(browser.app(&step, APP).await, &issuer);

    // With PostMethod the step calls the end session endpoint itself and sends the browser
    // straight to afterLogoutUrl (relative to appUrl).
    browser.login(&step, APP, "heidi").await;
    allowed(browser.app(&step, APP).await);
    let logout = denied(browser.app(&step, "https://app.example/logout").await);
    assert_eq!(logout.status, StatusCode::FOUND);
    assert_eq!(location(&logout), AFTER_LOGOUT);
    assert_login_starts(browser.app(&step, APP).await, &issuer);
}
