//! `gloo run` with Gloo's Settings naming a Kubernetes config source, against the fake API
//! server of gloo-discovery's tests (path-included from there, not copied): a VirtualService
//! applied to the API server is served, its status is written back, and EndpointSlice changes
//! (an endpoint added, moved, removed) reach traffic through the endpoint fast path, without a
//! translation of the config.

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
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("settings.yaml"),
        "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  discoveryNamespace: gloo-system\n  kubernetesConfigSource: {}\n",
    )
    .expect("write settings");
    std::fs::write(config.join("gateway.yaml"), gateway_yaml(listen)).expect("write gateway");
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
