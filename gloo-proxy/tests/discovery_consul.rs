//! `gloo run` with Gloo's Settings naming Consul service discovery and the Consul KV config
//! source, against the fake Consul of gloo-discovery's tests (path-included from there, not
//! copied): a VirtualService stored in Consul KV is served, routing to the `consul-svc:web`
//! upstream discovered from the catalog; instances registered and deregistered change traffic
//! through the endpoint fast path, without a translation of the config.

mod support;

#[path = "../../gloo-discovery/tests/support/fake_consul.rs"]
mod fake_consul;

use std::path::Path;

use fake_consul::FakeConsul;
use support::{
    free_port, gateway_yaml, gloo_ready, translations, wait_for_backends, Backend, Proc,
};

/// A VirtualService in Gloo's Consul KV layout (the resource's fields at the top level; kind,
/// namespace and name from the key).
const KV_VIRTUAL_SERVICE: &str = "virtualHost:\n  domains: ['*']\n  routes:\n  - matchers: [{prefix: /}]\n    routeAction: {single: {upstream: {name: 'consul-svc:web', namespace: gloo-system}}}\n";

fn start_gloo(consul: &str, dir: &Path, listen: u16) -> Proc {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("settings.yaml"),
        "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  consulKvSource: {rootKey: gloo}\n  consul:\n    serviceDiscovery: {}\n",
    )
    .expect("write settings");
    std::fs::write(config.join("gateway.yaml"), gateway_yaml(listen)).expect("write gateway");
    let admin = free_port();
    // The agent's address comes from the command line (the Settings name none).
    gloo_ready(
        "gloo-run",
        &[
            "run",
            "--config",
            &config.display().to_string(),
            "--consul-address",
            consul,
        ],
        admin,
        dir,
    )
}

fn register(consul: &FakeConsul, id: &str, port: u16) {
    consul.register(
        "dc1",
        "node-1",
        "127.0.0.1",
        "web",
        id,
        &["v1"],
        "127.0.0.1",
        port,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_service_from_consul_kv_routes_to_discovered_instances_that_move_traffic() {
    let consul = FakeConsul::start_new(&["dc1"]).await;
    let a = Backend::start("a");
    let b = Backend::start("b");
    register(&consul, "web-a", a.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let listen = free_port();
    let address = consul.address();
    let dir_path = dir.path().to_path_buf();
    let gloo = tokio::task::spawn_blocking(move || start_gloo(&address, &dir_path, listen))
        .await
        .expect("start gloo");

    // Written after gloo started: it arrives through the blocking query.
    consul.kv_put(
        "gloo/gateway.solo.io/v1/VirtualService/gloo-system/web",
        KV_VIRTUAL_SERVICE.as_bytes(),
    );
    let (gloo, translated) = tokio::task::spawn_blocking(move || {
        let mut gloo = gloo;
        wait_for_backends(&mut gloo, listen, &["a"], 4);
        let translated = translations(&gloo);
        (gloo, translated)
    })
    .await
    .expect("served");

    register(&consul, "web-b", b.port);
    let gloo = tokio::task::spawn_blocking(move || {
        let mut gloo = gloo;
        wait_for_backends(&mut gloo, listen, &["a", "b"], 8);
        gloo
    })
    .await
    .expect("added");
    consul.deregister("dc1", "node-1", "web-a");
    let gloo = tokio::task::spawn_blocking(move || {
        let mut gloo = gloo;
        wait_for_backends(&mut gloo, listen, &["b"], 6);
        gloo
    })
    .await
    .expect("removed");

    assert_eq!(translations(&gloo), translated, "{}", gloo.logs());
    assert!(
        gloo.stderr_text()
            .contains("endpoints only: no route translated"),
        "{}",
        gloo.logs()
    );
}
