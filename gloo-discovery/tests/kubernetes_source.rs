//! The Kubernetes config source against the fake API server: Gloo's CRDs read and edited, a bad
//! object keeping its last good version, status write-back (seen through the fake and through
//! kubectl), watched namespaces, Ingresses translated through gloo-core's Translator, and
//! ConfigMaps made with kubectl feeding OPA modules.
#![cfg(feature = "kubernetes")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::{Kind, Resource, ResourceRef};
use gloo_core::source::{ConfigSource, SourceSnapshot};
use gloo_core::status::State;
use gloo_core::translate::Translator;
use gloo_discovery::kubernetes::{
    IngressOptions, KubernetesDiscovery, KubernetesSource, RetryBackoff, StatusWriter,
};
use gloo_discovery::DiscoveryRunner;
use serde_json::{json, Value};
use support::fake_apiserver::FakeApiServer;
use support::{required_env, wait_for};

const FAST: RetryBackoff = RetryBackoff {
    initial: Duration::from_millis(50),
    max: Duration::from_millis(200),
};

fn names(snapshot: &SourceSnapshot) -> Vec<String> {
    let mut names: Vec<String> = snapshot
        .resources
        .iter()
        .map(|r| r.resource.display_name())
        .collect();
    names.sort();
    names
}

fn vs(namespace: &str, name: &str, routes: Value) -> Value {
    json!({
        "apiVersion": "gateway.solo.io/v1", "kind": "VirtualService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"virtualHost": {"domains": [format!("{name}.example.com")], "routes": routes}}
    })
}

fn to_petstore(prefix: &str) -> Value {
    json!({"matchers": [{"prefix": prefix}], "routeAction": {"single": {"upstream": {"name": "petstore", "namespace": "gloo-system"}}}})
}

fn petstore() -> Value {
    json!({
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream",
        "metadata": {"name": "petstore", "namespace": "gloo-system"},
        "spec": {"static": {"hosts": [{"addr": "10.1.1.1", "port": 8080}]}}
    })
}

/// One object of every kind gloo reads.
fn every_kind(fake: &FakeApiServer) {
    fake.apply(petstore());
    fake.apply(vs("default", "shop", json!([to_petstore("/")])));
    for (api, kind, spec) in [
        (
            "gateway.solo.io/v1",
            "Gateway",
            json!({"bindAddress": "::", "bindPort": 8080, "httpGateway": {}, "proxyNames": ["gateway-proxy"]}),
        ),
        (
            "gateway.solo.io/v1",
            "RouteTable",
            json!({"routes": [to_petstore("/rt")]}),
        ),
        (
            "gateway.solo.io/v1",
            "VirtualHostOption",
            json!({"options": {}}),
        ),
        ("gateway.solo.io/v1", "RouteOption", json!({"options": {}})),
        (
            "gloo.solo.io/v1",
            "UpstreamGroup",
            json!({"destinations": [{"destination": {"upstream": {"name": "petstore", "namespace": "gloo-system"}}, "weight": 1}]}),
        ),
        (
            "gloo.solo.io/v1",
            "Settings",
            json!({"discoveryNamespace": "gloo-system"}),
        ),
        (
            "enterprise.gloo.solo.io/v1",
            "AuthConfig",
            json!({"configs": []}),
        ),
        (
            "ratelimit.solo.io/v1alpha1",
            "RateLimitConfig",
            json!({"raw": {"descriptors": [{"key": "generic_key", "value": "x", "rateLimit": {"unit": "MINUTE", "requestsPerUnit": 1}}], "rateLimits": [{"actions": [{"genericKey": {"descriptorValue": "x"}}]}]}}),
        ),
    ] {
        fake.apply(json!({"apiVersion": api, "kind": kind, "metadata": {"name": "one", "namespace": "gloo-system"}, "spec": spec}));
    }
    // A Secret, listed by the API server without apiVersion/kind (a built-in kind).
    fake.apply(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "tls", "namespace": "gloo-system"},
        "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}
    }));
    // A ConfigMap (Gloo's Artifacts on Kubernetes), a built-in kind too.
    fake.apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rules", "namespace": "gloo-system"},
        "data": {"rules.conf": "SecRuleEngine On"}
    }));
}

fn source(fake: &FakeApiServer) -> gloo_discovery::kubernetes::KubernetesSourceBuilder {
    KubernetesSource::builder(fake.client()).backoff(FAST)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_are_read_and_edited_and_a_bad_edit_keeps_the_last_good_version() {
    let fake = FakeApiServer::start().await;
    every_kind(&fake);
    // An object being deleted (finalizer pending) carries server fields gloo's metadata lacks.
    let mut deleting = vs("default", "leaving", json!([to_petstore("/old")]));
    deleting["metadata"]["finalizers"] = json!(["example.com/hold"]);
    deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
    deleting["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    fake.apply(deleting);

    let source = source(&fake).start();
    source.synced().await;
    let mut updates = source.subscribe();
    let snapshot = updates.borrow_and_update().clone();
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    assert_eq!(
        names(&snapshot),
        [
            "AuthConfig gloo-system.one",
            "ConfigMap gloo-system.rules",
            "Gateway gloo-system.one",
            "RateLimitConfig gloo-system.one",
            "RouteOption gloo-system.one",
            "RouteTable gloo-system.one",
            "Secret gloo-system.tls",
            "Settings gloo-system.one",
            "Upstream gloo-system.petstore",
            "UpstreamGroup gloo-system.one",
            "VirtualHostOption gloo-system.one",
            "VirtualService default.leaving",
            "VirtualService default.shop",
        ]
    );
    let shop = snapshot
        .resources
        .iter()
        .find(|r| r.resource.display_name() == "VirtualService default.shop")
        .unwrap();
    assert_eq!(
        &*shop.origin.file,
        "/apis/gateway.solo.io/v1/namespaces/default/virtualservices/shop"
    );
    let translation = Translator::new().translate(&snapshot);
    let status = translation
        .reports
        .get(Kind::VirtualService, &ResourceRef::new("default", "shop"))
        .unwrap();
    assert_eq!(status.state, State::Accepted, "{status:?}");

    // An edit is published.
    fake.apply(vs(
        "default",
        "shop",
        json!([to_petstore("/v2"), to_petstore("/")]),
    ));
    let routes = |s: &SourceSnapshot| {
        s.resources.iter().find_map(|r| match &r.resource {
            Resource::VirtualService(v) if v.metadata.name == "shop" => {
                Some(v.spec.virtual_host.as_ref().map_or(0, |h| h.routes.len()))
            }
            _ => None,
        })
    };
    wait_for(&mut updates, "the edit", |s| routes(s) == Some(2)).await;

    // A bad edit: refused with the object and the field named; the last good version stays.
    let mut bad = vs("default", "shop", json!([to_petstore("/v3")]));
    bad["spec"]["virtualHost"]["routez"] = json!([]);
    fake.apply(bad);
    let snapshot = wait_for(&mut updates, "the error", |s| !s.errors.is_empty()).await;
    assert_eq!(routes(&snapshot), Some(2));
    let error = snapshot.errors[0].to_string();
    assert!(
        error.starts_with("/apis/gateway.solo.io/v1/namespaces/default/virtualservices/shop:")
            && error.contains("spec.virtualHost.routez: unknown field `routez`"),
        "{error}"
    );
    let translation = Translator::new().translate(&snapshot);
    assert_eq!(translation.reports.load_errors.len(), 1);

    // Fixed: the error goes; deleted: the resource goes.
    fake.apply(vs("default", "shop", json!([to_petstore("/v3")])));
    let snapshot = wait_for(&mut updates, "the fix", |s| s.errors.is_empty()).await;
    assert_eq!(routes(&snapshot), Some(1));
    fake.delete("gateway.solo.io/v1", "VirtualService", "default", "shop");
    wait_for(&mut updates, "the delete", |s| routes(s).is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_are_written_back_as_gloo_writes_them() {
    let fake = FakeApiServer::start().await;
    every_kind(&fake);
    // Warning: a route to a missing upstream. Rejected: an upstream without a type.
    fake.apply(vs("default", "lost", json!([{"matchers": [{"prefix": "/"}], "routeAction": {"single": {"upstream": {"name": "nowhere", "namespace": "gloo-system"}}}}])));
    fake.apply(json!({"apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "metadata": {"name": "typeless", "namespace": "gloo-system"}, "spec": {}}));
    let source = source(&fake).start();
    source.synced().await;
    let mut updates = source.subscribe();
    let snapshot = updates.borrow_and_update().clone();
    let reports = Translator::new().translate(&snapshot).reports;
    let writer = StatusWriter::new(fake.client(), "gloo-system");
    let written = writer.write(&reports).await.unwrap();
    // Every resource read from the API server but the Secret and the ConfigMap.
    assert_eq!(written, 12);

    let status = |api: &str, kind: &str, ns: &str, name: &str| {
        fake.get(api, kind, ns, name).unwrap()["status"]["statuses"]["gloo-system"].clone()
    };
    assert_eq!(
        status("gateway.solo.io/v1", "VirtualService", "default", "shop"),
        json!({"state": "Accepted", "reportedBy": "gateway"})
    );
    let lost = status("gateway.solo.io/v1", "VirtualService", "default", "lost");
    assert_eq!(lost["state"], "Warning");
    assert!(
        lost["reason"]
            .as_str()
            .unwrap()
            .starts_with("warning: \n  "),
        "{lost}"
    );
    let typeless = status("gloo.solo.io/v1", "Upstream", "gloo-system", "typeless");
    assert_eq!(typeless["state"], "Rejected");
    assert_eq!(typeless["reportedBy"], "gloo");
    assert!(
        typeless["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 error occurred:\n\t* spec: no upstream type"),
        "{typeless}"
    );
    assert_eq!(
        status(
            "ratelimit.solo.io/v1alpha1",
            "RateLimitConfig",
            "gloo-system",
            "one"
        ),
        json!({"state": "ACCEPTED"})
    );
    // Merge patches: of the resource for Gloo's CRDs (they have no status subresource), of the
    // status subresource for RateLimitConfig.
    let patches: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH"))
        .collect();
    assert!(
        patches.contains(
            &"PATCH /apis/gateway.solo.io/v1/namespaces/default/virtualservices/shop?".to_string()
        ) || patches.iter().any(|p| p
            .starts_with("PATCH /apis/gateway.solo.io/v1/namespaces/default/virtualservices/shop")
            && !p.contains("/status")),
        "{patches:?}"
    );
    assert!(patches.iter().any(|p| p.starts_with("PATCH /apis/ratelimit.solo.io/v1alpha1/namespaces/gloo-system/ratelimitconfigs/one/status")), "{patches:?}");

    // kubectl sees them.
    let kubectl = required_env("GLOO_TEST_KUBECTL");
    let out = tokio::process::Command::new(kubectl)
        .args([
            "--server",
            &fake.url(),
            "get",
            "virtualservices.gateway.solo.io",
            "-n",
            "default",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.statuses.gloo-system.state} {end}",
        ])
        .env("KUBECONFIG", "/dev/null")
        .output()
        .await
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "lost=Warning shop=Accepted"
    );

    // A status write is not a new version of the resource: nothing is re-published. A
    // VirtualService added after the writes is seen after their events (one watch stream), and
    // it is the only change published.
    fake.apply(vs("default", "marker", json!([])));
    let marked = wait_for(&mut updates, "the marker", |s| {
        names(s).contains(&"VirtualService default.marker".to_string())
    })
    .await;
    assert_eq!(marked.generation, snapshot.generation + 1);
    let generation = marked.generation;
    // Unchanged statuses are not written again.
    assert_eq!(writer.write(&reports).await.unwrap(), 0);
    // Fixed: the warning's reason is removed by the merge patch.
    fake.apply(vs("default", "lost", json!([to_petstore("/")])));
    let snapshot = wait_for(&mut updates, "the fix", |s| s.generation > generation).await;
    let reports = Translator::new().translate(&snapshot).reports;
    // `lost`, and the marker, whose status was never written.
    assert_eq!(writer.write(&reports).await.unwrap(), 2);
    assert_eq!(
        status("gateway.solo.io/v1", "VirtualService", "default", "lost"),
        json!({"state": "Accepted", "reportedBy": "gateway"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_the_api_server_does_not_serve_does_not_hold_the_source_back() {
    // A cluster without the RateLimitConfig CRD: its list is 404.
    let types = support::fake_apiserver::default_types()
        .into_iter()
        .filter(|t| t.kind != "RateLimitConfig")
        .collect();
    let fake = FakeApiServer::start_with(types, Duration::from_millis(500)).await;
    fake.apply(petstore());
    let source = source(&fake).start();
    source.synced().await;
    assert_eq!(
        names(&source.subscribe().borrow()),
        ["Upstream gloo-system.petstore"]
    );
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.starts_with("GET /apis/ratelimit.solo.io/v1alpha1/ratelimitconfigs")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_watched_namespaces_are_read() {
    let fake = FakeApiServer::start().await;
    fake.apply(vs("team-a", "a", json!([])));
    fake.apply(vs("team-b", "b", json!([])));
    let source = source(&fake)
        .watch_namespaces(["team-a"])
        .kinds([Kind::VirtualService])
        .start();
    source.synced().await;
    assert_eq!(
        names(&source.subscribe().borrow()),
        ["VirtualService team-a.a"]
    );
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.contains("/namespaces/team-a/")));
}

fn ingress(name: &str, extra: Value) -> Value {
    let mut ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {}
    });
    if let (Some(target), Value::Object(extra)) = (ingress.as_object_mut(), extra) {
        for (k, v) in extra {
            target.insert(k, v);
        }
    }
    ingress
}

fn backend(service: &str, port: Value) -> Value {
    json!({"service": {"name": service, "port": port}})
}

/// A virtual host: its name, its domains and its routes' `(match, cluster)`.
type Host = (String, Value, Vec<(Value, Value)>);

/// Every virtual host in the proxy's route configurations, from the xDS JSON.
fn hosts(translation: &gloo_core::translate::Translation) -> Vec<Host> {
    let json = translation.proxies["gateway-proxy"].to_json().unwrap();
    let mut out = Vec::new();
    for config in json["routes"].as_array().into_iter().flatten() {
        for host in config["virtualHosts"].as_array().into_iter().flatten() {
            let routes = host["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| (r["match"].clone(), r["route"]["cluster"].clone()))
                .collect();
            out.push((
                host["name"].as_str().unwrap_or_default().to_string(),
                host["domains"].clone(),
                routes,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingresses_become_virtual_services_that_translate() {
    let fake = FakeApiServer::start().await;
    fake.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}));
    fake.apply(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "default"},
        "spec": {"selector": {"app": "api"}, "ports": [{"name": "grpc", "port": 9000}]}}));
    fake.apply(json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": "web-tls", "namespace": "default"}, "data": {"tls.crt": "Q0VSVA==", "tls.key": "S0VZ"}}));
    fake.apply(ingress("web", json!({
        "metadata": {"name": "web", "namespace": "default", "annotations": {"kubernetes.io/ingress.class": "gloo"}},
        "spec": {
            "defaultBackend": backend("web", json!({"number": 80})),
            "tls": [{"hosts": ["secure.example.com"], "secretName": "web-tls"}],
            "rules": [
                {"host": "example.com", "http": {"paths": [
                    {"path": "/api", "pathType": "Prefix", "backend": backend("api", json!({"name": "grpc"}))},
                    {"path": "/exact", "pathType": "Exact", "backend": backend("web", json!({"number": 80}))},
                    {"path": "/re[0-9]+", "pathType": "ImplementationSpecific", "backend": backend("web", json!({"number": 80}))},
                    {"path": "/bucket", "pathType": "Prefix", "backend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "b"}}},
                    {"path": "/nope", "pathType": "Prefix", "backend": backend("web", json!({"name": "missing"}))}
                ]}},
                {"host": "bare.example.com"},
                {"host": "secure.example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": backend("web", json!({"number": 80}))}
                ]}}
            ]
        }
    })));
    // Another class: not ours when a class is required.
    fake.apply(ingress("other", json!({
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "other.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend("web", json!({"number": 80}))}]}}]}
    })));
    // The class by spec.ingressClassName.
    fake.apply(ingress("by-class-name", json!({
        "spec": {"ingressClassName": "gloo", "rules": [{"host": "class.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": backend("api", json!({"number": 9000}))}]}}]}
    })));

    let client = fake.client();
    let source = Arc::new(
        source(&fake)
            .kinds([Kind::Secret])
            .ingress(IngressOptions::default().require_ingress_class(true))
            .start(),
    );
    source.synced().await;
    // Discovery makes the upstreams the Ingress routes go to.
    let running = DiscoveryRunner::new()
        .plugin(
            KubernetesDiscovery::new(client)
                .backoff(FAST)
                .pod_labels(false),
        )
        .start(source.clone());
    let mut merged = running.subscribe();
    let snapshot = wait_for(&mut merged, "discovered upstreams", |s| {
        s.resources
            .iter()
            .filter(|r| r.resource.kind() == Kind::Upstream)
            .count()
            == 2
    })
    .await;

    // What the Ingress asks for that cannot be served: named.
    let errors: Vec<String> = snapshot.errors.iter().map(|e| e.to_string()).collect();
    let at = "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web:1:1: ";
    assert_eq!(
        errors,
        [
            format!("{at}spec.rules[0].http.paths[3].backend.resource: resource backends are not supported (gloo routes to Services only); this path is not served"),
            format!("{at}spec.rules[0].http.paths[4].backend.service.port.name: port missing not found for service web.default"),
            format!("{at}spec.rules[1].http: missing: gloo serves HTTP rules only; this rule is ignored"),
        ]
    );

    let translation = Translator::new().translate(&snapshot);
    for name in [
        "ingress-example-com-http",
        "ingress-secure-example-com-https",
        "ingress-class-example-com-http",
        "ingress-wildcard-http",
    ] {
        let status = translation
            .reports
            .get(Kind::VirtualService, &ResourceRef::new("gloo-system", name))
            .unwrap_or_else(|| {
                panic!(
                    "no status for {name}: {:?}",
                    translation.reports.resources.keys()
                )
            });
        assert_eq!(status.state, State::Accepted, "{name}: {status:?}");
    }
    assert!(translation
        .reports
        .get(
            Kind::VirtualService,
            &ResourceRef::new("gloo-system", "ingress-other-example-com-http")
        )
        .is_none());

    let web = json!("default-web-80_gloo-system");
    let api = json!("default-api-9000_gloo-system");
    let hosts = hosts(&translation);
    let find = |name: &str| {
        hosts
            .iter()
            .find(|h| h.0 == format!("gloo-system_{name}"))
            .cloned()
            .unwrap_or_else(|| panic!("no virtual host {name} in {hosts:?}"))
    };
    let (_, domains, routes) = find("ingress-example-com-http");
    assert_eq!(domains, json!(["example.com", "example.com:8080"]));
    assert_eq!(
        routes,
        [
            (json!({"path": "/exact"}), web.clone()),
            (json!({"safeRegex": {"regex": "/re[0-9]+"}}), web.clone()),
            (json!({"safeRegex": {"regex": "/api(/.*)?"}}), api.clone()),
            (json!({"prefix": "/"}), web.clone()),
        ]
    );
    let (_, domains, routes) = find("ingress-secure-example-com-https");
    assert_eq!(
        domains,
        json!(["secure.example.com", "secure.example.com:8443"])
    );
    assert_eq!(
        routes,
        [
            (json!({"prefix": "/"}), web.clone()),
            (json!({"prefix": "/"}), web.clone())
        ]
    );
    let (_, domains, routes) = find("ingress-wildcard-http");
    assert_eq!(domains, json!(["*", "*:8080"]));
    assert_eq!(routes, [(json!({"prefix": "/"}), web.clone())]);
    // Nothing of this came from a CRD: no status is written (no 404s on generated resources).
    // Each problem of the Ingress is a Warning Event on it, created once.
    let writer = StatusWriter::new(fake.client(), "gloo-system");
    assert_eq!(writer.write(&translation.reports).await.unwrap(), 3);
    assert!(!fake.requests().iter().any(|r| r.starts_with("PATCH")));
    let ingress = fake
        .get("networking.k8s.io/v1", "Ingress", "default", "web")
        .expect("the Ingress");
    let mut events: Vec<(Value, String)> = fake
        .list("v1", "Event")
        .into_iter()
        .map(|e| {
            let message = e["message"].as_str().unwrap_or_default().to_string();
            (
                json!({
                    "involvedObject": e["involvedObject"],
                    "type": e["type"], "reason": e["reason"], "source": e["source"],
                }),
                message,
            )
        })
        .collect();
    events.sort_by(|a, b| a.1.cmp(&b.1));
    let expected_object = json!({
        "involvedObject": {
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "name": "web", "namespace": "default",
            "uid": ingress["metadata"]["uid"],
            "resourceVersion": ingress["metadata"]["resourceVersion"],
        },
        "type": "Warning", "reason": "Rejected", "source": {"component": "gloo"},
    });
    let messages: Vec<&str> = events.iter().map(|(_, m)| m.as_str()).collect();
    let mut expected: Vec<String> = errors
        .iter()
        .map(|e| e.strip_prefix(at).unwrap_or(e).to_string())
        .collect();
    expected.sort();
    assert_eq!(messages, expected);
    for (object, _) in &events {
        assert_eq!(object, &expected_object);
    }
    assert_eq!(writer.write(&translation.reports).await.unwrap(), 0);
    // A restarted gloo finds them there and creates none.
    let restarted = StatusWriter::new(fake.client(), "gloo-system");
    assert_eq!(restarted.write(&translation.reports).await.unwrap(), 0);
    assert_eq!(fake.list("v1", "Event").len(), 3);
    // Problems still there past the refresh interval are announced again, as client-go's
    // recorder repeats an event (`count` up, `lastTimestamp` moved), and one the API server
    // expired meanwhile (its Event TTL) is created again.
    let counts = |fake: &FakeApiServer| {
        let mut counts: Vec<i64> = fake
            .list("v1", "Event")
            .iter()
            .map(|e| e["count"].as_i64().unwrap_or(-1))
            .collect();
        counts.sort();
        counts
    };
    let refreshing = StatusWriter::new(fake.client(), "gloo-system").event_refresh(Duration::ZERO);
    assert_eq!(refreshing.write(&translation.reports).await.unwrap(), 0);
    assert_eq!(counts(&fake), [1, 1, 1]);
    assert_eq!(refreshing.write(&translation.reports).await.unwrap(), 3);
    assert_eq!(counts(&fake), [2, 2, 2]);
    let expired = fake.list("v1", "Event")[0]["metadata"]["name"]
        .as_str()
        .expect("an Event name")
        .to_string();
    assert!(fake.delete("v1", "Event", "default", &expired));
    assert_eq!(refreshing.write(&translation.reports).await.unwrap(), 3);
    assert_eq!(counts(&fake), [1, 3, 3]);
    // The default interval: nothing is repeated right away.
    assert_eq!(writer.write(&translation.reports).await.unwrap(), 0);

    // The HTTPS host is served on the TLS listener, with the Ingress's secret.
    let listeners =
        translation.proxies["gateway-proxy"].to_json().unwrap()["listeners"].to_string();
    assert!(listeners.contains("secure.example.com"), "{listeners}");
    assert!(
        listeners.contains("Q0VSVA") || listeners.contains("CERT"),
        "{listeners}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_map_made_with_kubectl_feeds_an_opa_module_and_its_edits_follow() {
    let fake = FakeApiServer::start().await;
    fake.apply(json!({
        "apiVersion": "enterprise.gloo.solo.io/v1", "kind": "AuthConfig",
        "metadata": {"name": "opa", "namespace": "gloo-system"},
        "spec": {"configs": [{"opaAuth": {
            "modules": [{"name": "allow-get", "namespace": "gloo-system"}],
            "query": "data.test.allow == true"
        }}]}
    }));
    let kubectl = required_env("GLOO_TEST_KUBECTL");
    // kubectl with `args` against the fake, `stdin` piped in; its stdout.
    let run = |args: Vec<String>, stdin: Vec<u8>| {
        let kubectl = kubectl.clone();
        let server = fake.url();
        async move {
            use tokio::io::AsyncWriteExt;
            let mut child = tokio::process::Command::new(&kubectl)
                .arg("--server")
                .arg(server)
                .args(&args)
                .env("KUBECONFIG", "/dev/null")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run kubectl");
            let mut input = child.stdin.take().expect("stdin");
            input.write_all(&stdin).await.expect("write stdin");
            drop(input);
            let out = child.wait_with_output().await.expect("kubectl output");
            assert!(
                out.status.success(),
                "kubectl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    };
    let args = |text: &str| -> Vec<String> { text.split(' ').map(str::to_string).collect() };
    // `kubectl create configmap --from-literal` writes the manifest; `kubectl create -f` or
    // `replace -f` sends it (as JSON: the typed `create configmap` would send protobuf, which
    // the fake does not speak; nor does it serve the OpenAPI schema kubectl validates with).
    let manifest = |method: &str| {
        let policy = format!(
            "--from-literal=policy.rego=package test\ndefault allow = false\nallow {{ input.http_request.method == \"{method}\" }}\n"
        );
        let mut a = args("create configmap allow-get -n gloo-system --dry-run=client -o json");
        a.push(policy);
        run(a, Vec::new())
    };
    let created = manifest("GET").await;
    run(args("create --validate=false -f -"), created).await;
    let source = source(&fake)
        .kinds([Kind::AuthConfig, Kind::ConfigMap, Kind::Artifact])
        .start();
    source.synced().await;
    let mut updates = source.subscribe();
    let snapshot = updates.borrow_and_update().clone();
    assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
    assert_eq!(
        names(&snapshot),
        [
            "AuthConfig gloo-system.opa",
            "ConfigMap gloo-system.allow-get"
        ]
    );
    // No Artifact CRD is asked for: Gloo's Artifacts are the ConfigMaps.
    assert!(
        fake.requests().iter().all(|r| !r.contains("artifacts")),
        "{:?}",
        fake.requests()
    );
    let mut translator = Translator::new();
    let module = |t: &gloo_core::translate::Translation| {
        t.ext_auth_server
            .configs
            .get("gloo-system.opa")
            .map(|c| c["configs"][0]["opaAuth"]["modules"]["policy.rego"].clone())
    };
    let first = translator.translate(&snapshot);
    assert_eq!(
        module(&first),
        Some(json!(
            "package test\ndefault allow = false\nallow { input.http_request.method == \"GET\" }\n"
        ))
    );

    // kubectl replaces the ConfigMap: the module follows.
    let edited = manifest("POST").await;
    run(args("replace --validate=false -f -"), edited).await;
    let snapshot = wait_for(&mut updates, "the edit", |s| {
        s.resources.iter().any(|r| match &r.resource {
            Resource::ConfigMap(m) => m
                .spec
                .data
                .get("policy.rego")
                .is_some_and(|p| p.contains("POST")),
            _ => false,
        })
    })
    .await;
    let second = translator.translate(&snapshot);
    assert!(
        module(&second)
            .and_then(|m| m.as_str().map(|m| m.contains("\"POST\"")))
            .unwrap_or(false),
        "{:?}",
        module(&second)
    );
    // Deleted with kubectl: the AuthConfig is rejected naming the ConfigMap, and its last
    // good version stays with the server.
    run(
        args("delete configmap allow-get -n gloo-system"),
        Vec::new(),
    )
    .await;
    let snapshot = wait_for(&mut updates, "the delete", |s| s.resources.len() == 1).await;
    let third = translator.translate(&snapshot);
    let status = third
        .reports
        .get(Kind::AuthConfig, &ResourceRef::new("gloo-system", "opa"))
        .expect("a status");
    assert_eq!(status.state, State::Rejected);
    assert_eq!(
        status.errors,
        ["spec.configs[0].opaAuth.modules[0]: ConfigMap gloo-system.allow-get not found"]
    );
    assert_eq!(module(&third), module(&second));
}
