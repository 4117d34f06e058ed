//! `gloo run` with Gloo's Settings naming Consul service discovery and the Consul KV config
//! source, against the fake Consul of gloo-discovery's tests (path-included from there, not
//! copied): a VirtualService stored in Consul KV is served, routing to the `consul-svc:web`
//! upstream discovered from the catalog; instances registered and deregistered change traffic
//! through the endpoint fast path, without a translation of the config. The same with
//! `gloo control-plane` feeding a real Envoy (`GLOO_TEST_ENVOY`).

mod support;

#[path = "../../gloo-discovery/tests/support/fake_consul.rs"]
mod fake_consul;

use std::path::Path;

use fake_consul::FakeConsul;
use support::{
    admin_get, control_plane_with, free_port, gateway_yaml, gloo_ready, poll, spawn_envoy,
    translations, wait_for_backends, Backend, Mode, Proc,
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

/// `gloo control-plane` with the same Consul discovery, feeding a real Envoy 1.40 over delta
/// ADS: Envoy's cluster membership (its admin `/clusters`) and its traffic follow instances
/// registered and deregistered, through the endpoint fast path (no full translation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gloo_control_plane_feeds_real_envoy_discovered_instances_that_follow_changes() {
    let consul = FakeConsul::start_new(&["dc1"]).await;
    let a = Backend::start("a");
    let b = Backend::start("b");
    register(&consul, "web-a", a.port);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("settings.yaml"),
        "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  consul:\n    serviceDiscovery: {}\n",
    )
    .expect("write settings");
    let listen = free_port();
    std::fs::write(
        config.join("gateway.yaml"),
        format!(
            "{}---\napiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: web, namespace: gloo-system}}\nspec:\n  {}",
            gateway_yaml(listen),
            KV_VIRTUAL_SERVICE.replace('\n', "\n  ")
        ),
    )
    .expect("write gateway");
    let xds = free_port();
    let admin = free_port();
    let address = consul.address();
    let log_dir = dir.path().to_path_buf();
    let (gloo, envoy) = tokio::task::spawn_blocking(move || {
        let gloo = control_plane_with(
            &config,
            xds,
            None,
            &["--consul-address".to_string(), address],
            &log_dir,
        );
        let mut envoy = spawn_envoy(Mode::Delta, xds, admin, &log_dir);
        wait_for_backends(&mut envoy, listen, &["a"], 4);
        (gloo, envoy)
    })
    .await
    .expect("served");
    let translated = translations(&gloo);

    /// The `host:port`s Envoy's admin `/clusters` lists as members of a cluster of ours.
    fn members(admin: u16, ports: &[u16]) -> Vec<u16> {
        let text = admin_get(admin, "/clusters");
        ports
            .iter()
            .copied()
            .filter(|p| text.contains(&format!("::127.0.0.1:{p}::health_flags::healthy")))
            .collect()
    }

    register(&consul, "web-b", b.port);
    let envoy = tokio::task::spawn_blocking(move || {
        let mut envoy = envoy;
        wait_for_backends(&mut envoy, listen, &["a", "b"], 8);
        assert_eq!(members(admin, &[a.port, b.port]), [a.port, b.port]);
        envoy
    })
    .await
    .expect("added");
    consul.deregister("dc1", "node-1", "web-a");
    let envoy = tokio::task::spawn_blocking(move || {
        let mut envoy = envoy;
        wait_for_backends(&mut envoy, listen, &["b"], 6);
        poll("a gone from Envoy's /clusters", || {
            let now = members(admin, &[a.port, b.port]);
            (now == [b.port]).then_some(()).ok_or(format!("{now:?}"))
        })
        .unwrap_or_else(|e| panic!("{e}"));
        envoy
    })
    .await
    .expect("removed");

    assert_eq!(
        translations(&gloo),
        translated,
        "{}\n{}",
        gloo.logs(),
        envoy.logs()
    );
    assert!(
        gloo.stderr_text()
            .contains("endpoints only: no route translated"),
        "{}",
        gloo.logs()
    );
}
