//! The ext auth service `gloo run` and `gloo control-plane` host (`--extauth-server`, `auto`
//! by default: where the Settings' `extauthzServerRef` Upstream points) end to end: a config
//! directory with Settings `extauth`, AuthConfigs (basic auth with an APR1 hash made by
//! Apache's `htpasswd`, `GLOO_TEST_HTPASSWD`; API keys from a Secret) and routes with
//! `options.extauth`, served by gloo-proxy's ext_authz filter calling the hosted service
//! through the Settings' Upstream, and by a real Envoy (`GLOO_TEST_ENVOY`) fed by
//! `gloo control-plane`, which must answer alike. Edits apply live; a bad edit keeps the last
//! good AuthConfig serving.
//!
//! The OIDC authorization-code flow (with PKCE) runs through `gloo run` against the real
//! node-oidc-provider 8 (`GLOO_TEST_OIDC_NODE_PATH`), driven by a test browser with a cookie
//! jar (gloo-filters' test support, shared).
//!
//! With `extauth-opa`, an OPA policy read from a ConfigMap in the config directory (Gloo's
//! `opaAuth.modules`) allows and denies requests, and follows the ConfigMap's edits.
//!
//! Everything listens on 127.0.0.1 on free ports; processes are killed when the test ends, and
//! on failure the config and the logs are printed.

#![cfg(feature = "extauth-server")]

#[path = "../../gloo-filters/tests/support/oidc_browser.rs"]
#[allow(dead_code)] // the gloo-filters tests use more of it
mod oidc_browser;
#[path = "../../gloo-filters/tests/support/oidc_provider.rs"]
mod oidc_provider;
#[path = "../../gloo-filters/tests/support/redis_server.rs"]
#[allow(dead_code)] // the gloo-filters tests use more of it
mod redis_server;
mod support;

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use support::{
    control_plane, free_port, gloo_ready, http_raw, poll, print_logs_if_panicking, spawn_envoy,
    static_upstream_yaml, write_atomically, Backend, Mode, Proc, Response,
};

/// An APR1 entry made by Apache's `htpasswd` for `user` / `password`: its salt and hash.
fn htpasswd(user: &str, password: &str) -> (String, String) {
    let program = match std::env::var_os("GLOO_TEST_HTPASSWD") {
        Some(path) if !path.is_empty() => path,
        _ => panic!(
            "GLOO_TEST_HTPASSWD is not set: this test needs Apache's htpasswd (Debian's apache2-utils). \
             Run scripts/test.sh, or export GLOO_TEST_HTPASSWD=$(command -v htpasswd)"
        ),
    };
    let output = std::process::Command::new(&program)
        .args(["-nbm", user, password])
        .output()
        .expect("run htpasswd");
    assert!(output.status.success(), "htpasswd failed: {output:?}");
    let line = String::from_utf8_lossy(&output.stdout);
    let entry = line
        .trim()
        .strip_prefix(&format!("{user}:$apr1$"))
        .expect("an APR1 entry");
    let (salt, hash) = entry.split_once('$').expect("salt$hash");
    (salt.to_string(), hash.to_string())
}

/// The Gateway on `port`, the backend's Upstream `app`, the ext auth server's Upstream
/// (127.0.0.1:`extauth`) and the Settings naming it, each document ending with `---`.
fn server_yaml(port: u16, extauth: u16, backend: &Backend) -> String {
    format!(
        r#"apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: gw, namespace: gloo-system}}
spec:
  bindAddress: 127.0.0.1
  bindPort: {port}
  httpGateway: {{}}
---
{app}---
{extauth_upstream}---
apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {{name: default, namespace: gloo-system}}
spec:
  extauth:
    extauthzServerRef: {{name: extauth, namespace: gloo-system}}
    requestTimeout: 5s
---
"#,
        app = static_upstream_yaml("app", backend.port),
        extauth_upstream = static_upstream_yaml("extauth", extauth),
    )
}

/// [`server_yaml`] and the VirtualService: `/basic` needs the AuthConfig `basic-auth`, `/keys`
/// the AuthConfig `api-keys`, `/public` nothing.
fn base_yaml(port: u16, extauth: u16, backend: &Backend) -> String {
    format!(
        r#"{server}apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: app, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /basic}}]
      options: {{extauth: {{configRef: {{name: basic-auth, namespace: gloo-system}}}}}}
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /keys}}]
      options: {{extauth: {{configRef: {{name: api-keys, namespace: gloo-system}}}}}}
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /public}}]
      options: {{extauth: {{disable: true}}}}
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
"#,
        server = server_yaml(port, extauth, backend),
    )
}

/// What the AuthConfigs say.
#[derive(Clone)]
struct Auth {
    /// `alice`'s salt and hash.
    alice: (String, String),
    /// The `booleanExpr` of `basic-auth`, if any.
    basic_expr: Option<&'static str>,
    /// The API key in the Secret `robot`.
    key: &'static str,
    /// The Secret `api-keys` names.
    key_secret: &'static str,
}

/// The AuthConfigs `basic-auth` (alice) and `api-keys` (the Secret `key_secret`), and the
/// API key Secret `robot`.
fn auth_yaml(auth: &Auth) -> String {
    let (salt, hash) = &auth.alice;
    let expr = auth
        .basic_expr
        .map(|e| format!("  booleanExpr: '{e}'\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: enterprise.gloo.solo.io/v1
kind: AuthConfig
metadata: {{name: basic-auth, namespace: gloo-system}}
spec:
{expr}  configs:
  - name: basic
    basicAuth:
      realm: gloo
      apr:
        users:
          alice: {{salt: '{salt}', hashedPassword: '{hash}'}}
---
apiVersion: enterprise.gloo.solo.io/v1
kind: AuthConfig
metadata: {{name: api-keys, namespace: gloo-system}}
spec:
  configs:
  - apiKeyAuth:
      headerName: api-key
      apiKeySecretRefs: [{{name: {secret}, namespace: gloo-system}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: robot, namespace: gloo-system}}
type: extauth.solo.io/apikey
stringData: {{api-key: {key}}}
"#,
        secret = auth.key_secret,
        key = auth.key,
    )
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `GET path` on 127.0.0.1:`port` with these headers.
fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    http_raw(port, request.as_bytes(), false)
        .unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"))
}

/// One side under test: its Gateway's port, the ext auth service's port, its config
/// directory, its backend and its processes (their logs printed if the test fails).
struct Side {
    name: &'static str,
    port: u16,
    extauth: u16,
    dir: PathBuf,
    backend: Backend,
    procs: Vec<Proc>,
}

impl Drop for Side {
    fn drop(&mut self) {
        print_logs_if_panicking(&self.dir, &self.procs.iter().collect::<Vec<_>>());
    }
}

impl Side {
    /// Writes the side's config (`base.yaml`, `auth.yaml`) under `root/name`.
    fn new(root: &Path, name: &'static str, auth: &Auth) -> Side {
        let dir = root.join(name).join("config");
        fs::create_dir_all(&dir).expect("config dir");
        let side = Side {
            name,
            port: free_port(),
            extauth: free_port(),
            dir,
            backend: Backend::start(name),
            procs: Vec::new(),
        };
        fs::write(
            side.dir.join("base.yaml"),
            base_yaml(side.port, side.extauth, &side.backend),
        )
        .expect("write base.yaml");
        side.edit(auth);
        side
    }

    fn edit(&self, auth: &Auth) {
        write_atomically(&self.dir.join("auth.yaml"), &auth_yaml(auth));
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        get(self.port, path, headers)
    }

    /// What the backend saw of the last request: its user id header.
    fn last_user_id(&self) -> Option<String> {
        self.backend
            .seen()
            .last()
            .and_then(|s| s.header("x-user-id").map(str::to_string))
    }

    /// Polls until `ready` holds of `GET path` with `headers` (its processes must keep
    /// running).
    fn wait(
        &mut self,
        what: &str,
        path: &str,
        headers: &[(&str, &str)],
        ready: impl Fn(&Response) -> bool,
    ) {
        let port = self.port;
        let procs = &mut self.procs;
        if let Err(e) = poll(&format!("{}: {what}", self.name), || {
            for proc in procs.iter_mut() {
                proc.check_running()?;
            }
            let mut request =
                format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n");
            for (k, v) in headers {
                request.push_str(&format!("{k}: {v}\r\n"));
            }
            request.push_str("\r\n");
            let r = http_raw(port, request.as_bytes(), false).map_err(|e| e.to_string())?;
            if ready(&r) {
                Ok(())
            } else {
                Err(format!("{} {:?} {}", r.status, r.headers, r.body))
            }
        }) {
            panic!("{e}");
        }
    }
}

/// Waits until `proc`'s stderr holds `line`.
fn wait_log(proc: &mut Proc, line: &str) {
    if let Err(e) = poll(&format!("`{line}` in the log"), || {
        proc.check_running()?;
        proc.stderr_text()
            .contains(line)
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    }) {
        panic!("{e}");
    }
}

const KEY_1: &str = "key-one";
const KEY_2: &str = "key-two";

/// The answers both sides must give to requests with the config of [`first_auth`].
fn assert_first_config(side: &Side) {
    let who = side.name;
    // No credentials: 401, and the backend never sees the request.
    let before = side.backend.count();
    let r = side.get("/basic", &[]);
    assert_eq!(r.status, 401, "{who}: {r:?}");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"gloo\""),
        "{who}"
    );
    let r = side.get("/basic", &[("authorization", &basic("alice", "wrong"))]);
    assert_eq!(r.status, 401, "{who}: {r:?}");
    let r = side.get("/keys", &[]);
    assert_eq!(r.status, 401, "{who}: {r:?}");
    let r = side.get("/keys", &[("api-key", "not-a-key")]);
    assert_eq!(r.status, 401, "{who}: {r:?}");
    assert_eq!(
        side.backend.count(),
        before,
        "{who}: a refused request got through"
    );
    // Credentials: 200, the user id set upstream (a client's own value replaced).
    let r = side.get(
        "/basic",
        &[
            ("authorization", &basic("alice", "wonderland")),
            ("x-user-id", "mallory"),
        ],
    );
    assert_eq!(r.status, 200, "{who}: {r:?}");
    assert_eq!(side.last_user_id().as_deref(), Some("alice"), "{who}");
    let r = side.get("/keys", &[("api-key", KEY_1), ("x-user-id", "mallory")]);
    assert_eq!(r.status, 200, "{who}: {r:?}");
    assert_eq!(side.last_user_id().as_deref(), Some("robot"), "{who}");
    // A route without auth: no user id, even a client's.
    let r = side.get("/public", &[("x-user-id", "mallory")]);
    assert_eq!(r.status, 200, "{who}: {r:?}");
    assert_eq!(side.last_user_id(), None, "{who}");
}

fn first_auth() -> Auth {
    Auth {
        alice: htpasswd("alice", "wonderland"),
        basic_expr: None,
        key: KEY_1,
        key_secret: "robot",
    }
}

/// Starts `gloo run` on `side` (default `--extauth-server auto`) and waits until the service
/// listens on the Settings' Upstream and `/public` is routed.
fn start_gloo_run(root: &Path, side: &mut Side) {
    let admin = free_port();
    let dir = side.dir.display().to_string();
    let mut gloo = gloo_ready(
        "gloo-run",
        &["run", "--config", &dir, "--ratelimit-server", "off"],
        admin,
        &root.join(side.name),
    );
    wait_log(
        &mut gloo,
        &format!("ext auth service listening on 127.0.0.1:{}", side.extauth),
    );
    side.procs.push(gloo);
    side.wait("/public to be routed", "/public", &[], |r| r.status == 200);
}

#[test]
fn gloo_run_hosts_the_ext_auth_service_and_applies_edits_live() {
    let root = tempfile::tempdir().expect("tempdir");
    let auth = first_auth();
    let mut side = Side::new(root.path(), "gloo", &auth);
    start_gloo_run(root.path(), &mut side);
    assert_first_config(&side);

    // An edit: alice's password changes; in the same edit `api-keys` names a Secret that
    // does not exist, so gloo rejects it and its last good version keeps serving.
    let second = Auth {
        alice: htpasswd("alice", "looking-glass"),
        key_secret: "gone",
        ..auth.clone()
    };
    side.edit(&second);
    let new_password = basic("alice", "looking-glass");
    side.wait(
        "the new password to be accepted",
        "/basic",
        &[("authorization", &new_password)],
        |r| r.status == 200,
    );
    assert_eq!(
        side.get(
            "/basic",
            &[("authorization", &basic("alice", "wonderland"))]
        )
        .status,
        401
    );
    assert!(
        side.procs[0].stderr_text().contains("Rejected"),
        "the AuthConfig naming a missing Secret is rejected"
    );
    let r = side.get("/keys", &[("api-key", KEY_1)]);
    assert_eq!(
        r.status, 200,
        "the rejected AuthConfig's last good version serves: {r:?}"
    );
    assert_eq!(side.last_user_id().as_deref(), Some("robot"));

    // The next edit fixes `api-keys` with a new key; `basic-auth` gets a boolean expression
    // the service cannot parse, so the service keeps its last good version.
    let third = Auth {
        key: KEY_2,
        key_secret: "robot",
        basic_expr: Some("basic &&"),
        ..second.clone()
    };
    side.edit(&third);
    side.wait(
        "the new key to be accepted",
        "/keys",
        &[("api-key", KEY_2)],
        |r| r.status == 200,
    );
    assert_eq!(side.get("/keys", &[("api-key", KEY_1)]).status, 401);
    wait_log(
        &mut side.procs[0],
        "ext auth service: AuthConfig gloo-system.basic-auth refused",
    );
    let r = side.get("/basic", &[("authorization", &new_password)]);
    assert_eq!(
        r.status, 200,
        "the refused AuthConfig's last good version serves: {r:?}"
    );
    assert_eq!(side.last_user_id().as_deref(), Some("alice"));

    // Fixed again: the expression applies (`!basic`: alice is refused, anyone else let in).
    side.edit(&Auth {
        basic_expr: Some("!basic"),
        ..third
    });
    side.wait(
        "the expression to apply",
        "/basic",
        &[("authorization", &new_password)],
        |r| r.status == 403,
    );
    assert_eq!(side.get("/basic", &[]).status, 200);
}

#[test]
fn envoy_fed_by_gloo_control_plane_answers_as_gloo_run() {
    let root = tempfile::tempdir().expect("tempdir");
    let auth = first_auth();
    let mut ours = Side::new(root.path(), "gloo", &auth);
    let mut envoys = Side::new(root.path(), "envoy", &auth);
    start_gloo_run(root.path(), &mut ours);

    let (xds, envoy_admin) = (free_port(), free_port());
    let envoy_dir = root.path().join("envoy");
    let mut cp = control_plane(&envoys.dir, xds, None, &envoy_dir);
    wait_log(
        &mut cp,
        &format!("ext auth service listening on 127.0.0.1:{}", envoys.extauth),
    );
    envoys.procs.push(cp);
    envoys
        .procs
        .push(spawn_envoy(Mode::Delta, xds, envoy_admin, &envoy_dir));
    envoys.wait("/public to be routed by Envoy", "/public", &[], |r| {
        r.status == 200
    });
    // Envoy asks the service through its own cluster of the Settings' Upstream, which may
    // still be warming when the routes arrive: wait for its first answer.
    envoys.wait("Envoy's first check", "/keys", &[("api-key", KEY_1)], |r| {
        r.status == 200
    });

    for side in [&ours, &envoys] {
        assert_first_config(side);
    }
    // The same answers, header for header where the auth service sets them.
    let requests: [(&str, Vec<(&str, String)>); 5] = [
        ("/basic", vec![]),
        (
            "/basic",
            vec![("authorization", basic("alice", "wonderland"))],
        ),
        (
            "/basic",
            vec![("authorization", basic("bob", "wonderland"))],
        ),
        ("/keys", vec![("api-key", KEY_1.to_string())]),
        ("/keys", vec![("api-key", "nope".to_string())]),
    ];
    for (path, headers) in &requests {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (a, b) = (ours.get(path, &headers), envoys.get(path, &headers));
        assert_eq!(a.status, b.status, "{path} {headers:?}: {a:?} / {b:?}");
        assert_eq!(
            a.header("www-authenticate"),
            b.header("www-authenticate"),
            "{path} {headers:?}"
        );
        if a.status == 200 {
            assert_eq!(ours.last_user_id(), envoys.last_user_id(), "{path}");
        }
    }

    // An edit applies on both sides.
    let second = Auth {
        alice: htpasswd("alice", "looking-glass"),
        ..auth
    };
    let new_password = basic("alice", "looking-glass");
    for side in [&mut ours, &mut envoys] {
        side.edit(&second);
        side.wait(
            "the new password to be accepted",
            "/basic",
            &[("authorization", &new_password)],
            |r| r.status == 200,
        );
        assert_eq!(side.last_user_id().as_deref(), Some("alice"));
        let old = side.get(
            "/basic",
            &[("authorization", &basic("alice", "wonderland"))],
        );
        assert_eq!(old.status, 401, "{}: {old:?}", side.name);
    }
}

/// The OIDC AuthConfig `oidc` (client `gloo` of `issuer`, its secret in the Secret `oauth`)
/// for the app at `app`: the ID token upstream in `x-id-token`, the `email` claim in
/// `x-email`; `/logout` ends the session. Cookies are not `Secure` (the app is plain HTTP).
fn oidc_yaml(app: &str, issuer: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: oauth, namespace: gloo-system}}
type: extauth.solo.io/oauth
stringData: {{client-secret: gloo-secret}}
---
apiVersion: enterprise.gloo.solo.io/v1
kind: AuthConfig
metadata: {{name: oidc, namespace: gloo-system}}
spec:
  configs:
  - oauth2:
      oidcAuthorizationCode:
        appUrl: {app}
        callbackPath: /callback
        logoutPath: /logout
        afterLogoutUrl: {app}/bye
        clientId: gloo
        clientSecretRef: {{name: oauth, namespace: gloo-system}}
        issuerUrl: {issuer}
        scopes: [email]
        session: {{cookieOptions: {{notSecure: true}}}}
        headers: {{idTokenHeader: x-id-token}}
        identityToken:
          claimsToHeaders: [{{claim: email, header: x-email}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oidc_login_runs_through_gloo_run_against_a_real_provider() {
    use http::header::LOCATION;
    use http::StatusCode;
    use oidc_browser::Browser;

    let root = tempfile::tempdir().expect("tempdir");
    let mut side = Side::new(root.path(), "gloo", &first_auth());
    let app = format!("http://127.0.0.1:{}", side.port);
    let provider = oidc_provider::OidcProvider::start(&serde_json::json!([{
        "client_id": "gloo",
        "client_secret": "gloo-secret",
        "redirect_uris": [format!("{app}/callback")],
        "post_logout_redirect_uris": [format!("{app}/bye")],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }]));
    let issuer = provider.issuer();
    fs::write(side.dir.join("oidc.yaml"), oidc_yaml(&app, &issuer)).expect("write oidc.yaml");
    // `/private` and `/logout` need a login, `/bye` (where logging out ends) does not.
    let routes = |yaml: String| {
        yaml.replace(
            "    - matchers: [{prefix: /public}]",
            "    - matchers: [{prefix: /private}]\n      options: {extauth: {configRef: {name: oidc, namespace: gloo-system}}}\n      routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}\n    - matchers: [{prefix: /callback}]\n      options: {extauth: {configRef: {name: oidc, namespace: gloo-system}}}\n      routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}\n    - matchers: [{prefix: /logout}]\n      options: {extauth: {configRef: {name: oidc, namespace: gloo-system}}}\n      routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}\n    - matchers: [{prefix: /public}]",
        )
    };
    fs::write(
        side.dir.join("base.yaml"),
        routes(base_yaml(side.port, side.extauth, &side.backend)),
    )
    .expect("write base.yaml");
    start_gloo_run(root.path(), &mut side);

    let mut browser = Browser::new();
    let private = format!("{app}/private?x=1");
    // No session: a 302 to the provider's authorization endpoint, with PKCE.
    let before = side.backend.count();
    let (status, headers, _) = browser.fetch(&private, None).await;
    assert_eq!(status, StatusCode::FOUND, "{headers:?}");
    let login = headers[LOCATION].to_str().expect("location").to_string();
    assert!(login.starts_with(&format!("{issuer}/auth?")), "{login}");
    for param in [
        "code_challenge_method=S256",
        "client_id=gloo",
        "response_type=code",
    ] {
        assert!(login.contains(param), "{param} in {login}");
    }
    assert_eq!(
        side.backend.count(),
        before,
        "the backend saw an anonymous request"
    );

    // Login and consent at the provider, which sends the browser to the callback; the
    // callback exchanges the code and sends the browser back where it started.
    let callback = browser.at_provider(&login, "alice", &app).await;
    assert!(
        callback.starts_with(&format!("{app}/callback?")),
        "{callback}"
    );
    let (status, headers, _) = browser.fetch(&callback, None).await;
    assert_eq!(status, StatusCode::FOUND, "{headers:?}");
    assert_eq!(headers[LOCATION], private.as_str());
    assert!(
        browser.jar.iter().any(|c| c.name == "id_token"),
        "a session cookie: {:?}",
        browser.jar
    );
    assert_eq!(
        side.backend.count(),
        before,
        "the callback is answered by the service"
    );

    // The session: the upstream gets the claims.
    let (status, _, body) = browser.fetch(&private, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = side.backend.seen();
    let seen = seen.last().expect("the backend saw the request");
    assert_eq!(seen.target, "/private?x=1");
    assert_eq!(seen.header("x-email"), Some("alice@example.com"));
    assert_eq!(seen.header("x-user-id"), Some("alice"));
    let id_token = seen.header("x-id-token").expect("the ID token upstream");
    assert_eq!(id_token.split('.').count(), 3, "a JWT: {id_token}");

    // Logout: the session cookies go, the browser is sent to the provider's end session
    // endpoint, and the next request starts a new login.
    let (status, headers, _) = browser.fetch(&format!("{app}/logout"), None).await;
    assert_eq!(status, StatusCode::FOUND, "{headers:?}");
    let end = headers[LOCATION].to_str().expect("location");
    assert!(end.starts_with(&format!("{issuer}/session/end")), "{end}");
    assert!(
        !browser.jar.iter().any(|c| c.name == "id_token"),
        "the session cookie is deleted: {:?}",
        browser.jar
    );
    let (status, headers, _) = browser.fetch(&private, None).await;
    assert_eq!(status, StatusCode::FOUND, "{headers:?}");
    assert!(headers[LOCATION]
        .to_str()
        .expect("location")
        .starts_with(&format!("{issuer}/auth?")));
}

/// OPA (`opaAuth`, feature `extauth-opa`) with its policy in a ConfigMap.
#[cfg(feature = "extauth-opa")]
mod opa {
    use super::*;

    /// [`server_yaml`], the AuthConfig `opa` (its policy in the ConfigMap `policy`) and a
    /// VirtualService whose routes need it, but `/public`.
    fn opa_base_yaml(port: u16, extauth: u16, backend: &Backend) -> String {
        format!(
            r#"{server}apiVersion: enterprise.gloo.solo.io/v1
kind: AuthConfig
metadata: {{name: opa, namespace: gloo-system}}
spec:
  configs:
  - opaAuth:
      modules: [{{name: policy, namespace: gloo-system}}]
      query: data.test.allow == true
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: app, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    options: {{extauth: {{configRef: {{name: opa, namespace: gloo-system}}}}}}
    routes:
    - matchers: [{{prefix: /public}}]
      options: {{extauth: {{disable: true}}}}
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: app, namespace: gloo-system}}}}}}
"#,
            server = server_yaml(port, extauth, backend),
        )
    }

    /// The ConfigMap `policy` holding `rego` as `policy.rego` (as `kubectl create configmap
    /// policy --from-file=policy.rego` writes it).
    fn opa_policy_yaml(rego: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: policy, namespace: gloo-system}}\ndata:\n  policy.rego: |\n{}",
            rego.lines().map(|l| format!("    {l}\n")).collect::<String>()
        )
    }

    /// Gloo's OPA guide's policy, letting GETs under `prefix` through.
    fn allow_get_under(prefix: &str) -> String {
        format!(
            "package test\n\ndefault allow = false\nallow {{\n    startswith(input.http_request.path, \"{prefix}\")\n    input.http_request.method == \"GET\"\n}}\n"
        )
    }

    #[test]
    fn an_opa_policy_read_from_a_config_map_decides_and_follows_its_edits() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("opa").join("config");
        fs::create_dir_all(&dir).expect("config dir");
        let mut side = Side {
            name: "opa",
            port: free_port(),
            extauth: free_port(),
            dir,
            backend: Backend::start("opa"),
            procs: Vec::new(),
        };
        fs::write(
            side.dir.join("base.yaml"),
            opa_base_yaml(side.port, side.extauth, &side.backend),
        )
        .expect("write base.yaml");
        let policy = side.dir.join("policy.yaml");
        write_atomically(&policy, &opa_policy_yaml(&allow_get_under("/api/pets")));
        start_gloo_run(root.path(), &mut side);

        let r = side.get("/api/pets/1", &[]);
        assert_eq!(r.status, 200, "{r:?}");
        let before = side.backend.count();
        let r = side.get("/api/users", &[]);
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(side.backend.count(), before, "a denied request got through");

        // The ConfigMap is edited: the new policy decides.
        write_atomically(&policy, &opa_policy_yaml(&allow_get_under("/api/users")));
        side.wait("the edited policy", "/api/users", &[], |r| r.status == 200);
        assert_eq!(side.get("/api/pets/1", &[]).status, 403);

        // Rego that does not compile: the service refuses it and keeps the last good policy.
        write_atomically(&policy, &opa_policy_yaml("package test\nallow {\n"));
        wait_log(
            &mut side.procs[0],
            "ext auth service: AuthConfig gloo-system.opa refused",
        );
        assert_eq!(side.get("/api/users", &[]).status, 200);
        assert_eq!(side.get("/api/pets/1", &[]).status, 403);

        // The ConfigMap goes: the AuthConfig is rejected naming it, and the last good policy
        // keeps deciding.
        fs::remove_file(&policy).expect("remove policy.yaml");
        wait_log(&mut side.procs[0], "ConfigMap gloo-system.policy not found");
        assert_eq!(side.get("/api/users", &[]).status, 200);
        assert_eq!(side.get("/api/pets/1", &[]).status, 403);
    }
}
