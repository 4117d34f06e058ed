//! `gloo run` with Gloo's Settings naming a Kubernetes config source, against the fake API
//! server of gloo-discovery's tests (path-included from there, not copied): a VirtualService
//! applied to the API server is served, its status is written back, and EndpointSlice changes
//! (an endpoint added, moved, removed) reach traffic through the endpoint fast path, without a
//! translation of the config. With `extauth-opa`, an OPA policy in a ConfigMap on the API
//! server decides requests, and an edit to the ConfigMap changes the decision.

mod support;

#[path = "../../gloo-discovery/tests/support/fake_apiserver.rs"]
mod fake_apiserver;

use std::path::Path;
use std::sync::Arc;

use fake_apiserver::FakeApiServer;
use serde_json::{json, Value};
use support::{
    free_port, gateway_yaml, gloo_ready, kubeconfig, poll, translations, wait_for_backends,
    Backend, Proc,
};

fn service() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    })
}

/// The Pod behind the Service's endpoints: Gloo's discovery keeps only endpoints whose Pod
/// matches the Service's selector (found by IP when the slice names no Pod).
fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1"}
    })
}

/// The EndpointSlice of `default/web` with a ready endpoint on 127.0.0.1 per port; all
/// endpoints of one slice share its port, so each backend gets its own slice.
fn slice(name: &str, port: u16) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]
    })
}

fn virtual_service() -> Value {
    json!({
        "apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"virtualHost": {"domains": ["*"], "routes": [{
            "matchers": [{"prefix": "/"}],
            "routeAction": {"single": {"upstream": {"name": "default-web-80", "namespace": "gloo-system"}}}
        }]}}
    })
}

fn start_gloo(fake: &FakeApiServer, dir: &Path, listen: u16) -> Proc {
    start_gloo_with(fake, dir, listen, "", &[])
}

/// [`start_gloo`] with more Settings fields (`settings`, YAML at the indentation of
/// `spec`'s fields) and more files (name, contents) in the config directory.
fn start_gloo_with(
    fake: &FakeApiServer,
    dir: &Path,
    listen: u16,
    settings: &str,
    files: &[(&str, String)],
) -> Proc {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("settings.yaml"),
        format!("apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  discoveryNamespace: gloo-system\n  kubernetesConfigSource: {{}}\n{settings}"),
    )
    .expect("write settings");
    std::fs::write(config.join("gateway.yaml"), gateway_yaml(listen)).expect("write gateway");
    for (name, text) in files {
        std::fs::write(config.join(name), text).expect("write config");
    }
    let kubeconfig = kubeconfig(dir, &fake.url());
    let admin = free_port();
    gloo_ready(
        "gloo-run",
        &[
            "run",
            "--config",
            &config.display().to_string(),
            "--kubeconfig",
            &kubeconfig,
        ],
        admin,
        dir,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_from_kubernetes_is_served_with_its_status_and_endpoint_slices_move_traffic(
) {
    let fake: Arc<FakeApiServer> = FakeApiServer::start().await;
    let a = Backend::start("a");
    let b = Backend::start("b");
    fake.apply(service());
    fake.apply(pod());
    fake.apply(slice("web-a", a.port));
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_port();
    let fake_for_gloo = fake.clone();
    let dir_path = dir.path().to_path_buf();
    let mut gloo =
        tokio::task::spawn_blocking(move || start_gloo(&fake_for_gloo, &dir_path, listen))
            .await
            .expect("start gloo");

    // Applied after gloo started: it arrives through the watch.
    fake.apply(virtual_service());
    let fake_for_poll = fake.clone();
    let (mut gloo, translated) = tokio::task::spawn_blocking(move || {
        wait_for_backends(&mut gloo, listen, &["a"], 4);
        // The status is written back to the resource, as Gloo's reporter writes it.
        let written = poll("the VirtualService's status in the API server", || {
            let vs = fake_for_poll
                .get("gateway.solo.io/v1", "VirtualService", "default", "web")
                .ok_or("VirtualService gone")?;
            let status = vs["status"]["statuses"]["gloo-system"].clone();
            if status.is_null() {
                Err(format!("no status yet: {vs}"))
            } else {
                Ok(status)
            }
        });
        let status = written.unwrap_or_else(|e| panic!("{e}\n{}", gloo.logs()));
        assert_eq!(
            status,
            json!({"state": "Accepted", "reportedBy": "gateway"}),
            "{}",
            gloo.logs()
        );
        let translated = translations(&gloo);
        (gloo, translated)
    })
    .await
    .expect("served");

    // A second endpoint: traffic is shared; then the first goes: traffic moves.
    fake.apply(slice("web-b", b.port));
    let mut gloo = tokio::task::spawn_blocking(move || {
        wait_for_backends(&mut gloo, listen, &["a", "b"], 8);
        gloo
    })
    .await
    .expect("added");
    assert!(fake.delete("discovery.k8s.io/v1", "EndpointSlice", "default", "web-a"));
    let gloo = tokio::task::spawn_blocking(move || {
        wait_for_backends(&mut gloo, listen, &["b"], 6);
        gloo
    })
    .await
    .expect("removed");

    // Endpoint changes went through the endpoint fast path: no translation of the config.
    assert_eq!(translations(&gloo), translated, "{}", gloo.logs());
    assert!(
        gloo.stderr_text()
            .contains("endpoints only: no route translated"),
        "{}",
        gloo.logs()
    );
}

/// An AuthConfig whose OPA policy lives in a ConfigMap on the API server, served by `gloo run`'s
/// ext auth service.
#[cfg(feature = "extauth-opa")]
mod opa {
    use super::*;
    use support::{http_raw, static_upstream_yaml};

    /// The ConfigMap `default/policy` letting GETs under `prefix` through (Gloo's OPA guide).
    fn policy(prefix: &str) -> Value {
        let rego = format!(
            "package test\n\ndefault allow = false\nallow {{\n    startswith(input.http_request.path, \"{prefix}\")\n    input.http_request.method == \"GET\"\n}}\n"
        );
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "policy", "namespace": "default"},
            "data": {"policy.rego": rego}
        })
    }

    fn status(listen: u16, path: &str) -> Result<u16, String> {
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
        http_raw(listen, request.as_bytes(), false)
            .map(|r| r.status)
            .map_err(|e| e.to_string())
    }

    /// Polls until `/api/pets` and `/api/users` answer `pets` and `users`.
    fn wait_for_decisions(gloo: &mut Proc, listen: u16, what: &str, pets: u16, users: u16) {
        if let Err(e) = poll(what, || {
            gloo.check_running()?;
            let got = (
                status(listen, "/api/pets/1")?,
                status(listen, "/api/users")?,
            );
            if got == (pets, users) {
                Ok(())
            } else {
                Err(format!("/api/pets/1, /api/users: {got:?}"))
            }
        }) {
            panic!("{e}\n{}", gloo.logs());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_opa_policy_in_a_config_map_on_the_api_server_decides_and_follows_its_edits() {
        let fake: Arc<FakeApiServer> = FakeApiServer::start().await;
        let app = Backend::start("app");
        let extauth = free_port();
        fake.apply(policy("/api/pets"));
        fake.apply(json!({
            "apiVersion": "enterprise.gloo.solo.io/v1", "kind": "AuthConfig",
            "metadata": {"name": "opa", "namespace": "default"},
            "spec": {"configs": [{"opaAuth": {
                "modules": [{"name": "policy", "namespace": "default"}],
                "query": "data.test.allow == true"
            }}]}
        }));
        fake.apply(json!({
            "apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"virtualHost": {"domains": ["*"],
                "options": {"extauth": {"configRef": {"name": "opa", "namespace": "default"}}},
                "routes": [{
                    "matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": "app", "namespace": "gloo-system"}}}
                }]}}
        }));
        let dir = tempfile::tempdir().expect("tempdir");
        let listen = free_port();
        let files = [
            ("app.yaml", static_upstream_yaml("app", app.port)),
            ("extauth.yaml", static_upstream_yaml("extauth", extauth)),
        ];
        let fake_for_gloo = fake.clone();
        let dir_path = dir.path().to_path_buf();
        let mut gloo = tokio::task::spawn_blocking(move || {
            let mut gloo = start_gloo_with(
                &fake_for_gloo,
                &dir_path,
                listen,
                "  extauth:\n    extauthzServerRef: {name: extauth, namespace: gloo-system}\n",
                &files,
            );
            wait_for_decisions(&mut gloo, listen, "the policy to decide", 200, 403);
            gloo
        })
        .await
        .expect("served");
        let before = app.count();
        assert_eq!(status(listen, "/api/users"), Ok(403));
        assert_eq!(app.count(), before, "a denied request reached the app");

        // The ConfigMap is edited on the API server: the decisions follow.
        fake.apply(policy("/api/users"));
        tokio::task::spawn_blocking(move || {
            wait_for_decisions(&mut gloo, listen, "the edited policy to decide", 403, 200);
        })
        .await
        .expect("edited");
    }
}
