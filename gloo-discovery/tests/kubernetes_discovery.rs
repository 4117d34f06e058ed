//! Kubernetes discovery against the fake API server: Services → upstreams (Gloo's naming,
//! labels and annotations), EndpointSlices + Pods → endpoints, recovery from `410 Gone` and
//! from an API server that is down, watched namespaces.
#![cfg(feature = "kubernetes")]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::{Resource, ResourceRef};
use gloo_core::source::{ConfigSource, MemorySource, SourceSnapshot};
use gloo_core::status::State;
use gloo_core::translate::{kube_upstream_name, Endpoints, Translator};
use gloo_discovery::kubernetes::{KubernetesDiscovery, RetryBackoff};
use gloo_discovery::{DiscoveryRunner, RunningDiscovery, Upstream};
use serde_json::{json, Value};
use support::fake_apiserver::FakeApiServer;
use support::wait_for;

const FAST: RetryBackoff = RetryBackoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(200),
};

fn start(
    fake: &FakeApiServer,
    config: Arc<MemorySource>,
    configure: impl FnOnce(KubernetesDiscovery) -> KubernetesDiscovery,
) -> RunningDiscovery {
    let discovery = configure(KubernetesDiscovery::new(fake.client()).backoff(FAST));
    DiscoveryRunner::new()
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .plugin(discovery)
        .start(config)
}

fn discovered(snapshot: &SourceSnapshot) -> BTreeMap<String, Arc<Upstream>> {
    snapshot
        .resources
        .iter()
        .filter_map(|r| match &r.resource {
            Resource::Upstream(u) if r.origin.file.starts_with("discovery:") => {
                Some((u.metadata.name.clone(), u.clone()))
            }
            _ => None,
        })
        .collect()
}

fn service(namespace: &str, name: &str, extra: Value) -> Value {
    let mut s = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    });
    merge(&mut s, extra);
    s
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn pod(name: &str, ip: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app"}]},
        "status": {"phase": "Running", "podIP": ip}
    })
}

fn slice(name: &str, service: &str, ports: Value, endpoints: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints
    })
}

fn endpoint(ip: &str, ready: Option<bool>, pod: Option<&str>) -> Value {
    let mut e = json!({"addresses": [ip]});
    if let Some(ready) = ready {
        e["conditions"] = json!({"ready": ready});
    } else {
        e["conditions"] = json!({});
    }
    if let Some(pod) = pod {
        e["targetRef"] = json!({"kind": "Pod", "name": pod, "namespace": "default"});
    }
    e
}

/// `address:port [k=v,...]` per endpoint of `upstream` (in gloo-system).
fn described(endpoints: &Endpoints, upstream: &str) -> Vec<String> {
    endpoints
        .get(&ResourceRef::new("gloo-system", upstream))
        .map(|eps| {
            eps.iter()
                .map(|e| {
                    let labels: Vec<String> =
                        e.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("{}:{} [{}]", e.address, e.port, labels.join(","))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_become_upstreams_named_labelled_and_annotated_like_gloo() {
    let fake = FakeApiServer::start().await;
    fake.apply(service(
        "default",
        "petstore",
        json!({
            "metadata": {"labels": {"team": "pets"}, "annotations": {"owner": "pets-team"}},
            "spec": {"ports": [
                {"name": "http", "port": 8080},
                {"name": "grpc-api", "port": 9000},
                {"name": "web", "port": 9443, "appProtocol": "kubernetes.io/h2c"}
            ]}
        }),
    ));
    fake.apply(service(
        "default",
        "forced-h1",
        json!({
            "metadata": {"annotations": {"gloo.solo.io/h2_service": "false"}},
            "spec": {"ports": [{"name": "grpc", "port": 50051, "appProtocol": "grpc"}]}
        }),
    ));
    fake.apply(service("default", "tuned", json!({
        "metadata": {"annotations": {
            "gloo.solo.io/upstream_config": "{\"connectionConfig\": {\"maxRequestsPerConnection\": 3}, \"useHttp2\": true}",
            "gloo.solo.io/sslService.secret": "80:tuned-tls"
        }}
    })));
    let long_ns = "a-namespace-with-a-rather-long-name-for-testing";
    let long_svc = "and-a-service-whose-name-is-long-too";
    fake.apply(service(long_ns, long_svc, json!({})));

    // A route to each kind destination: it must land on the discovered upstream.
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml(&format!(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: vs, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{{prefix: /pets}}]\n      routeAction: {{single: {{kube: {{ref: {{name: petstore, namespace: default}}, port: 8080}}}}}}\n    - matchers: [{{prefix: /long}}]\n      routeAction: {{single: {{kube: {{ref: {{name: {long_svc}, namespace: {long_ns}}}, port: 80}}}}}}\n"
    ));
    let running = start(&fake, config, |d| d);
    let mut source = running.subscribe();
    let snapshot = wait_for(&mut source, "6 discovered upstreams", |s| {
        discovered(s).len() == 6
    })
    .await;
    let ups = discovered(&snapshot);
    let long_name = kube_upstream_name(long_ns, long_svc, 80);
    assert_eq!(long_name.len(), 63);
    assert_eq!(ups.keys().cloned().collect::<Vec<_>>(), {
        let mut want = vec![
            "default-forced-h1-50051".to_string(),
            "default-petstore-8080".into(),
            "default-petstore-9000".into(),
            "default-petstore-9443".into(),
            "default-tuned-80".into(),
            long_name.clone(),
        ];
        want.sort();
        want
    });
    let petstore = &ups["default-petstore-8080"];
    assert_eq!(petstore.metadata.namespace.as_deref(), Some("gloo-system"));
    assert_eq!(
        petstore.metadata.labels,
        BTreeMap::from([("discovered_by".to_string(), "kubernetesplugin".to_string())])
    );
    assert_eq!(
        petstore
            .metadata
            .annotations
            .get("owner")
            .map(String::as_str),
        Some("pets-team")
    );
    assert_eq!(
        petstore.spec.discovery_metadata.as_ref().unwrap().labels,
        BTreeMap::from([("team".to_string(), "pets".to_string())])
    );
    let kube = petstore.spec.kube.as_ref().unwrap();
    assert_eq!(kube.service_name.as_deref(), Some("petstore"));
    assert_eq!(kube.service_namespace.as_deref(), Some("default"));
    assert_eq!(kube.service_port, Some(8080));
    assert_eq!(
        kube.selector,
        BTreeMap::from([("app".to_string(), "petstore".to_string())])
    );
    assert_eq!(petstore.spec.use_http2, None);
    // HTTP/2: a `grpc` port name prefix, appProtocol kubernetes.io/h2c; the annotation wins
    // over appProtocol grpc.
    assert_eq!(ups["default-petstore-9000"].spec.use_http2, Some(true));
    assert_eq!(ups["default-petstore-9443"].spec.use_http2, Some(true));
    assert_eq!(ups["default-forced-h1-50051"].spec.use_http2, Some(false));
    // upstream_config merged in; the port-scoped SSL secret applied.
    let tuned = &ups["default-tuned-80"];
    assert_eq!(tuned.spec.use_http2, Some(true));
    assert_eq!(
        serde_json::to_value(&tuned.spec.connection_config).unwrap()["maxRequestsPerConnection"],
        3
    );
    let ssl = tuned.spec.ssl_config.as_ref().unwrap();
    assert_eq!(
        ssl.secret_ref,
        Some(ResourceRef::new("default", "tuned-tls"))
    );

    // gloo-core's `kube` destinations agree with the names: both routes find their upstream.
    let translation = Translator::new().translate(&snapshot);
    let vs = translation
        .reports
        .get(
            gloo_core::model::Kind::VirtualService,
            &ResourceRef::new("gloo-system", "vs"),
        )
        .unwrap();
    assert_eq!(vs.state, State::Accepted, "{vs:?}");
    let clusters = &translation.proxies["gateway-proxy"].clusters;
    assert!(
        clusters.contains_key("default-petstore-8080_gloo-system"),
        "{:?}",
        clusters.keys()
    );
    assert!(clusters.contains_key(&format!("{long_name}_gloo-system")));

    // Edits: a port added, a Service deleted.
    fake.apply(service(
        "default",
        "tuned",
        json!({"spec": {"ports": [{"name": "http", "port": 80}, {"name": "admin", "port": 81}]}}),
    ));
    assert!(fake.delete("v1", "Service", "default", "forced-h1"));
    let snapshot = wait_for(&mut source, "the edits", |s| {
        let ups = discovered(s);
        ups.contains_key("default-tuned-81") && !ups.contains_key("default-forced-h1-50051")
    })
    .await;
    assert_eq!(discovered(&snapshot).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_slices_give_ready_endpoints_on_the_named_port_with_pod_labels() {
    let fake = FakeApiServer::start().await;
    fake.apply(service(
        "default",
        "web",
        json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "metrics", "port": 9090, "targetPort": 9091}
        ]}}),
    ));
    for (n, version) in [(1, "v1"), (2, "v2"), (3, "v2"), (4, "v1")] {
        fake.apply(pod(
            &format!("web-{n}"),
            &format!("10.0.0.{n}"),
            json!({"app": "web", "version": version}),
        ));
    }
    // Ports listed in another order than the Service's: matched by name.
    let ports = json!([{"name": "metrics", "port": 9091}, {"name": "http", "port": 8080}]);
    fake.apply(slice(
        "web-a",
        "web",
        ports.clone(),
        json!([
            endpoint("10.0.0.1", Some(true), Some("web-1")),
            endpoint("10.0.0.2", None, Some("web-2")), // ready unset: ready
            endpoint("10.0.0.3", Some(false), Some("web-3")), // not ready
        ]),
    ));
    // No targetRef: the Pod is found by its IP.
    fake.apply(slice(
        "web-b",
        "web",
        ports,
        json!([endpoint("10.0.0.4", Some(true), None)]),
    ));

    // A user's upstream for a subset of the Service's Pods.
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: web-v2, namespace: gloo-system}\nspec:\n  kube: {serviceName: web, serviceNamespace: default, servicePort: 80, selector: {version: v2}}\n");
    let running = start(&fake, config, |d| d);
    let mut endpoints = running.endpoints();
    let found = wait_for(&mut endpoints, "web endpoints", |e| e.len() == 3).await;
    assert_eq!(
        described(&found, "default-web-80"),
        [
            "10.0.0.1:8080 [app=web,version=v1]",
            "10.0.0.2:8080 [app=web,version=v2]",
            "10.0.0.4:8080 [app=web,version=v1]",
        ]
    );
    assert_eq!(
        described(&found, "default-web-9090"),
        [
            "10.0.0.1:9091 [app=web,version=v1]",
            "10.0.0.2:9091 [app=web,version=v2]",
            "10.0.0.4:9091 [app=web,version=v1]",
        ]
    );
    assert_eq!(
        described(&found, "web-v2"),
        ["10.0.0.2:8080 [app=web,version=v2]"]
    );

    // web-1 stops being ready, web-3 becomes ready; a Pod's labels change.
    fake.apply(slice(
        "web-a",
        "web",
        json!([{"name": "metrics", "port": 9091}, {"name": "http", "port": 8080}]),
        json!([
            endpoint("10.0.0.1", Some(false), Some("web-1")),
            endpoint("10.0.0.2", Some(true), Some("web-2")),
            endpoint("10.0.0.3", Some(true), Some("web-3")),
        ]),
    ));
    fake.apply(pod(
        "web-4",
        "10.0.0.4",
        json!({"app": "web", "version": "v2"}),
    ));
    let found = wait_for(&mut endpoints, "the readiness change", |e| {
        described(e, "web-v2").len() == 3
    })
    .await;
    assert_eq!(
        described(&found, "default-web-80"),
        [
            "10.0.0.2:8080 [app=web,version=v2]",
            "10.0.0.3:8080 [app=web,version=v2]",
            "10.0.0.4:8080 [app=web,version=v2]",
        ]
    );
    // The slice of a Service gone: its upstreams lose their endpoints.
    assert!(fake.delete("v1", "Service", "default", "web"));
    wait_for(&mut endpoints, "no endpoints without the service", |e| {
        e.is_empty()
    })
    .await;
}

/// A fake with Service `web`, Pod `web-1` and a slice with its ready endpoint; and the slice's
/// ports.
async fn one_web_endpoint() -> (Arc<FakeApiServer>, Value) {
    let fake = FakeApiServer::start().await;
    fake.apply(service("default", "web", json!({})));
    fake.apply(pod("web-1", "10.0.0.1", json!({"app": "web"})));
    let ports = json!([{"name": "http", "port": 8080}]);
    fake.apply(slice(
        "web-a",
        "web",
        ports.clone(),
        json!([endpoint("10.0.0.1", Some(true), Some("web-1"))]),
    ));
    (fake, ports)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_gone_relists_and_nothing_is_lost() {
    let (fake, ports) = one_web_endpoint().await;
    fake.apply(pod("web-2", "10.0.0.2", json!({"app": "web"})));
    let running = start(&fake, Arc::new(MemorySource::new("config")), |d| d);
    let mut endpoints = running.endpoints();
    let mut source = running.subscribe();
    wait_for(&mut endpoints, "first endpoints", |e| {
        described(e, "default-web-80").len() == 1
    })
    .await;
    let lists_before = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && !r.contains("watch=true"))
        .count();

    // The watches are cut; meanwhile an endpoint is replaced, a Service appears, a Pod changes
    // and one is deleted; the history is compacted, so resuming is 410 Gone and each watcher
    // (Services, EndpointSlices, Pods) lists again.
    fake.stop().await;
    fake.apply(slice(
        "web-a",
        "web",
        ports,
        json!([endpoint("10.0.0.2", Some(true), Some("web-2"))]),
    ));
    fake.apply(service("default", "api", json!({})));
    fake.apply(pod(
        "web-2",
        "10.0.0.2",
        json!({"app": "web", "version": "v2"}),
    ));
    fake.delete("v1", "Pod", "default", "web-1");
    fake.compact();
    fake.resume().await;

    let found = wait_for(&mut endpoints, "endpoints after the re-list", |e| {
        described(e, "default-web-80") == ["10.0.0.2:8080 [app=web,version=v2]"]
    })
    .await;
    assert_eq!(found.len(), 1);
    wait_for(&mut source, "the service created while cut off", |s| {
        discovered(s).contains_key("default-api-80")
    })
    .await;
    let lists_after = fake
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET") && !r.contains("watch=true"))
        .count();
    assert!(
        lists_after >= lists_before + 3,
        "each watcher listed again: {lists_before} -> {lists_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_down_at_start_or_mid_run_keeps_the_last_endpoints_and_recovers() {
    let (fake, ports) = one_web_endpoint().await;
    fake.stop().await;

    let running = start(&fake, Arc::new(MemorySource::new("config")), |d| d);
    let mut endpoints = running.endpoints();
    // Down: nothing is published; the watchers keep trying.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(endpoints.borrow().is_empty());
    assert!(discovered(&running.subscribe().borrow()).is_empty());
    fake.resume().await;
    wait_for(&mut endpoints, "endpoints once the API server is up", |e| {
        described(e, "default-web-80") == ["10.0.0.1:8080 [app=web]"]
    })
    .await;

    // Down mid-run: what was found keeps serving while the watchers fail and retry.
    fake.stop().await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        described(&endpoints.borrow(), "default-web-80"),
        ["10.0.0.1:8080 [app=web]"]
    );
    fake.apply(pod("web-2", "10.0.0.2", json!({"app": "web"})));
    fake.apply(slice(
        "web-a",
        "web",
        ports,
        json!([
            endpoint("10.0.0.1", Some(true), Some("web-1")),
            endpoint("10.0.0.2", Some(true), Some("web-2")),
        ]),
    ));
    fake.resume().await;
    wait_for(&mut endpoints, "the change made while down", |e| {
        described(e, "default-web-80").len() == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_choose_the_watched_namespaces_and_the_services_discovered() {
    let fake = FakeApiServer::start().await;
    // Services labelled `expose: "yes"` are discovered (udsOptions.watchLabels); `hidden` is not.
    fake.apply(service("b", "hidden", json!({})));
    for ns in ["a", "b", "c"] {
        fake.apply(service(
            ns,
            "web",
            json!({"metadata": {"labels": {"expose": "yes"}}}),
        ));
        fake.apply(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-x", "namespace": ns, "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [format!("10.0.1.{}", ns.as_bytes()[0])], "conditions": {"ready": true}}]
        }));
    }
    // A written upstream for a Service in an unwatched namespace gets no endpoints.
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: c-web, namespace: gloo-system}\nspec:\n  kube: {serviceName: web, serviceNamespace: c, servicePort: 80}\n");
    let settings: gloo_core::model::settings::SettingsSpec = serde_json::from_value(json!({
        "watchNamespaces": ["a", "b"],
        "discoveryNamespace": "gloo-system",
        "discovery": {"udsOptions": {"watchLabels": {"expose": "yes"}}}
    }))
    .unwrap();
    let discovery = KubernetesDiscovery::from_settings(fake.client(), &settings)
        .backoff(FAST)
        .pod_labels(false);
    let running = DiscoveryRunner::new().plugin(discovery).start(config);
    let mut source = running.subscribe();
    let snapshot = wait_for(&mut source, "a and b", |s| discovered(s).len() == 2).await;
    assert_eq!(
        discovered(&snapshot).keys().cloned().collect::<Vec<_>>(),
        ["a-web-80", "b-web-80"]
    );
    let mut endpoints = running.endpoints();
    let found = wait_for(&mut endpoints, "a and b endpoints", |e| e.len() == 2).await;
    assert!(found
        .get(&ResourceRef::new("gloo-system", "c-web"))
        .is_none());
    // Every request was scoped to a watched namespace.
    let requests = fake.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.contains("/namespaces/a/") || r.contains("/namespaces/b/")),
        "{requests:?}"
    );
}
