//! Consul discovery and the Consul KV config source against a FAKE Consul
//! (`support/fake_consul.rs`: Consul's catalog, health and KV HTTP APIs with blocking queries,
//! ACLs and failure injection; no real Consul agent is available on these machines).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gloo_core::model::upstream::ConsulUpstreamSpec;
use gloo_core::model::{Resource, ResourceRef};
use gloo_core::source::{ConfigSource, MemorySource, SourceSnapshot};
use gloo_core::translate::{Endpoint, Endpoints, Translator};
use gloo_discovery::consul::{ConsulClient, ConsulConfig, ConsulDiscovery, ConsulKvSource};
use gloo_discovery::{DiscoveryRunner, RunningDiscovery};
use support::fake_consul::{FakeConsul, Policy};
use support::wait_for;

fn client(fake: &FakeConsul) -> ConsulClient {
    ConsulClient::new(ConsulConfig::new(fake.address())).unwrap()
}

fn run(client: ConsulClient, config: Arc<MemorySource>) -> RunningDiscovery {
    DiscoveryRunner::new()
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .plugin(ConsulDiscovery::new(client))
        .start(config)
}

/// The consul specs of the upstreams in a snapshot, by name.
fn consul_upstreams(snapshot: &SourceSnapshot) -> BTreeMap<String, ConsulUpstreamSpec> {
    snapshot
        .resources
        .iter()
        .filter_map(|r| match &r.resource {
            Resource::Upstream(u) => Some((u.metadata.name.clone(), u.spec.consul.clone()?)),
            _ => None,
        })
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn web() -> ResourceRef {
    ResourceRef::new("gloo-system", "consul-svc:web")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_follow_services_registered_in_two_data_centers() {
    let fake = FakeConsul::start_new(&["dc1", "dc2"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &["v1"], "", 8080);
    fake.register(
        "dc2",
        "n2",
        "10.0.2.1",
        "web",
        "web-2",
        &["v2", "v1"],
        "",
        8080,
    );
    fake.register("dc2", "n2", "10.0.2.1", "api", "api-1", &[], "", 9090);
    let running = run(client(&fake), Arc::new(MemorySource::new("config")));
    let mut source = running.subscribe();
    let found = wait_for(&mut source, "web, api and consul upstreams", |s| {
        consul_upstreams(s).len() == 3
    })
    .await;
    let upstreams = consul_upstreams(&found);
    // As Gloo's CreateUpstreamsFromService: every data center of the service, the union of its
    // tags, both sorted; the Consul servers' own `consul` service is a service too.
    let web = &upstreams["consul-svc:web"];
    assert_eq!(web.service_name.as_deref(), Some("web"));
    assert_eq!(web.data_centers, strings(&["dc1", "dc2"]));
    assert_eq!(web.service_tags, strings(&["v1", "v2"]));
    assert_eq!(upstreams["consul-svc:api"].data_centers, strings(&["dc2"]));
    assert_eq!(
        upstreams["consul-svc:consul"].data_centers,
        strings(&["dc1", "dc2"])
    );
    assert!(found
        .resources
        .iter()
        .all(|r| r.resource.metadata().namespace() == "gloo-system"));

    // Deregistering the last instance of `api` removes its upstream; `web` leaving dc2
    // narrows its data centers and tags.
    fake.deregister("dc2", "n2", "api-1");
    fake.deregister("dc2", "n2", "web-2");
    let found = wait_for(&mut source, "api gone, web in dc1 only", |s| {
        let u = consul_upstreams(s);
        !u.contains_key("consul-svc:api")
            && u.get("consul-svc:web")
                .is_some_and(|w| w.data_centers == ["dc1"])
    })
    .await;
    assert_eq!(
        consul_upstreams(&found)["consul-svc:web"].service_tags,
        ["v1"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_carry_glooss_labels_consuls_health_and_the_tag_filters() {
    let fake = FakeConsul::start_new(&["dc1", "dc2"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &["v1"], "", 8080);
    // ServiceAddress set: it wins over the node's address.
    fake.register(
        "dc2",
        "n2",
        "10.0.2.1",
        "web",
        "web-2",
        &["v2"],
        "10.0.2.9",
        8081,
    );
    // A user's upstream for the same service selecting `v2` instances only, and one that
    // excludes them.
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: web-v2, namespace: apps}\nspec:\n  consul: {serviceName: web, instanceTags: [v2]}\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: web-not-v2, namespace: apps}\nspec:\n  consul: {serviceName: web, instanceBlacklistTags: [v2]}\n",
    );
    let running = run(client(&fake), config);
    let mut endpoints = running.endpoints();
    let found = wait_for(&mut endpoints, "web's endpoints", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 2)
    })
    .await;
    // Gloo's BuildTagMetadata / BuildDataCenterMetadata over the discovered upstream's tags and
    // data centers (the user's upstreams add none).
    let mut one = Endpoint::new("10.0.1.1", 8080);
    one.labels = labels(&[
        ("tag_v1", "1"),
        ("tag_v2", "0"),
        ("dc_dc1", "1"),
        ("dc_dc2", "0"),
    ]);
    let mut two = Endpoint::new("10.0.2.9", 8081);
    two.labels = labels(&[
        ("tag_v1", "0"),
        ("tag_v2", "1"),
        ("dc_dc1", "0"),
        ("dc_dc2", "1"),
    ]);
    assert_eq!(found[&web()], [one.clone(), two.clone()]);
    assert_eq!(found[&ResourceRef::new("apps", "web-v2")], [two.clone()]);
    assert_eq!(
        found[&ResourceRef::new("apps", "web-not-v2")],
        [one.clone()]
    );

    // A critical instance check marks the instance unhealthy; so does its node's serfHealth.
    fake.set_check("dc1", "n1", "service:web-1", "critical");
    let found = wait_for(&mut endpoints, "web-1 unhealthy", |e| {
        e.get(&web()).is_some_and(|w| !w[0].healthy)
    })
    .await;
    assert!(found[&web()][1].healthy);
    fake.set_check("dc1", "n1", "service:web-1", "warning");
    wait_for(&mut endpoints, "warning is healthy", |e| {
        e.get(&web()).is_some_and(|w| w[0].healthy)
    })
    .await;
    fake.set_check("dc2", "n2", "serfHealth", "critical");
    wait_for(&mut endpoints, "web-2's node down", |e| {
        e.get(&web()).is_some_and(|w| w[0].healthy && !w[1].healthy)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_query_wakes_on_a_change_and_nothing_polls_in_between() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &[], "", 8080);
    // Consul's default 5 minute wait: every change below arrives long before a wait ends.
    let running = run(client(&fake), Arc::new(MemorySource::new("config")));
    let mut endpoints = running.endpoints();
    wait_for(&mut endpoints, "web-1", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 1)
    })
    .await;
    // Settled: the catalog and health watches are parked in Consul. Nothing changes, so
    // nothing is asked.
    let mut settled = fake.requests();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = fake.requests();
        if now == settled {
            break;
        }
        settled = now;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.requests(), settled, "requests while nothing changed");
    fake.register("dc1", "n2", "10.0.1.2", "web", "web-2", &[], "", 8080);
    let found = wait_for(&mut endpoints, "web-2", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 2)
    })
    .await;
    assert_eq!(found[&web()][1].address, "10.0.1.2");
    // One change wakes the service's watch and the catalog's once each, and each asks again.
    assert!(
        fake.requests() - settled <= 6,
        "{} requests for one change",
        fake.requests() - settled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_down_at_start_or_mid_run_keeps_the_endpoints_and_recovers() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &[], "", 8080);
    fake.stop().await;
    let running = run(client(&fake), Arc::new(MemorySource::new("config")));
    let mut endpoints = running.endpoints();
    let mut source = running.subscribe();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        endpoints.borrow().is_empty(),
        "nothing found while the agent is down"
    );
    fake.start().await;
    wait_for(&mut endpoints, "web-1 after the agent came up", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 1)
    })
    .await;

    // Down mid-run: the last endpoints and upstreams keep serving while Consul changes.
    fake.stop().await;
    fake.register("dc1", "n2", "10.0.1.2", "web", "web-2", &[], "", 8080);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let kept: Vec<String> = endpoints.borrow()[&web()]
        .iter()
        .map(|e| e.address.clone())
        .collect();
    assert_eq!(kept, ["10.0.1.1"]);
    assert!(consul_upstreams(&source.borrow()).contains_key("consul-svc:web"));
    fake.start().await;
    wait_for(&mut endpoints, "web-2 after the agent came back", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 2)
    })
    .await;

    // 500s (no cluster leader) likewise.
    fake.fail_with(500, "No cluster leader");
    fake.deregister("dc1", "n1", "web-1");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(endpoints.borrow()[&web()].len(), 2);
    fake.clear_failure();
    let found = wait_for(&mut endpoints, "web-1 gone after recovery", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 1)
    })
    .await;
    assert_eq!(found[&web()][0].address, "10.0.1.2");
    wait_for(&mut source, "upstreams still there", |s| {
        consul_upstreams(s).contains_key("consul-svc:web")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_url_and_consuls_answer() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.enable_acls(
        &[(
            "good",
            Policy {
                catalog_read: true,
                ..Default::default()
            },
        )],
        Policy::default(),
    );
    let bad = ConsulClient::new(ConsulConfig::new(fake.address()).token("stale")).unwrap();
    let err = bad.catalog_services(Some("dc1"), 0).await.unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(403));
    assert_eq!(
        err.to_string(),
        format!("GET http://{}/v1/catalog/services?dc=dc1: Consul answered 403 Forbidden: ACL not found", fake.address())
    );
    fake.fail_with(500, "rpc error making call: No cluster leader");
    let err = client(&fake)
        .health_service("web", None, 0)
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("/v1/health/service/web: Consul answered 500 Internal Server Error: rpc error making call: No cluster leader"), "{err}");
    fake.fail_with(200, "<html>a proxy's login page</html>");
    let err = client(&fake).datacenters().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("/v1/catalog/datacenters: the answer is not what Consul sends"),
        "{err}"
    );
    fake.stop().await;
    let err = client(&fake).datacenters().await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "GET http://{}/v1/catalog/datacenters: ",
            fake.address()
        )),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_token_is_sent_and_required() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &[], "", 8080);
    fake.enable_acls(
        &[(
            "good",
            Policy {
                catalog_read: true,
                ..Default::default()
            },
        )],
        Policy::default(),
    );
    // Without a token Consul filters the catalog: nothing is discovered.
    let anonymous = run(client(&fake), Arc::new(MemorySource::new("config")));
    // With an unknown token every read is refused: the plugin keeps failing.
    let stale = run(
        ConsulClient::new(ConsulConfig::new(fake.address()).token("stale")).unwrap(),
        Arc::new(MemorySource::new("config")),
    );
    let good = run(
        ConsulClient::new(ConsulConfig::new(fake.address()).token("good")).unwrap(),
        Arc::new(MemorySource::new("config")),
    );
    let mut endpoints = good.endpoints();
    wait_for(&mut endpoints, "web-1 with the token", |e| {
        e.contains_key(&web())
    })
    .await;
    let mut source = good.subscribe();
    wait_for(&mut source, "web upstream with the token", |s| {
        consul_upstreams(s).contains_key("consul-svc:web")
    })
    .await;
    // Given as long again, neither of the others found anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(consul_upstreams(&anonymous.subscribe().borrow()).is_empty());
    assert!(anonymous.endpoints().borrow().is_empty());
    assert!(consul_upstreams(&stale.subscribe().borrow()).is_empty());
    assert!(stale.endpoints().borrow().is_empty());
}

const KV_UPSTREAM: &str = "static:\n  hosts: [{addr: 10.0.0.1, port: 80}]\n";

fn upstream_hosts(snapshot: &SourceSnapshot) -> BTreeMap<String, Vec<String>> {
    snapshot
        .resources
        .iter()
        .filter_map(|r| match &r.resource {
            Resource::Upstream(u) => Some((
                u.metadata.to_ref().to_string(),
                u.spec
                    .r#static
                    .as_ref()?
                    .hosts
                    .iter()
                    .map(|h| format!("{}:{}", h.addr, h.port))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_source_loads_edits_keeps_the_last_good_value_and_deletes() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.kv_put(
        "gloo/gloo.solo.io/v1/Upstream/apps/petstore",
        KV_UPSTREAM.as_bytes(),
    );
    fake.kv_put(
        "gloo/mine/more.yaml",
        b"apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: other, namespace: apps}\nspec:\n  static: {hosts: [{addr: 10.0.0.2, port: 81}]}\n",
    );
    // Outside the root key: not read.
    fake.kv_put(
        "gloox/gloo.solo.io/v1/Upstream/apps/x",
        KV_UPSTREAM.as_bytes(),
    );
    // A short wait, so waits end without changes too.
    let kv_client =
        ConsulClient::new(ConsulConfig::new(fake.address()).wait_time(Duration::from_millis(200)))
            .unwrap();
    let source = ConsulKvSource::start(kv_client, "gloo");
    let mut updates = source.subscribe();
    let loaded = wait_for(&mut updates, "both upstreams", |s| s.resources.len() == 2).await;
    assert_eq!(
        upstream_hosts(&loaded),
        BTreeMap::from([
            ("apps.other".to_string(), vec!["10.0.0.2:81".to_string()]),
            ("apps.petstore".to_string(), vec!["10.0.0.1:80".to_string()]),
        ])
    );
    assert!(loaded.errors.is_empty());

    // An edit is published.
    fake.kv_put(
        "gloo/gloo.solo.io/v1/Upstream/apps/petstore",
        KV_UPSTREAM.replace("10.0.0.1", "10.0.0.3").as_bytes(),
    );
    wait_for(&mut updates, "the edit", |s| {
        upstream_hosts(s)["apps.petstore"] == ["10.0.0.3:80"]
    })
    .await;
    // A bad value keeps that key's last good contents and says why, naming the key.
    fake.kv_put(
        "gloo/gloo.solo.io/v1/Upstream/apps/petstore",
        b"static: {hosts: 7}\n",
    );
    let bad = wait_for(&mut updates, "the error", |s| !s.errors.is_empty()).await;
    assert_eq!(upstream_hosts(&bad)["apps.petstore"], ["10.0.0.3:80"]);
    assert!(
        bad.errors[0]
            .to_string()
            .starts_with("consul-kv:gloo/gloo.solo.io/v1/Upstream/apps/petstore:"),
        "{}",
        bad.errors[0]
    );
    // Deleting the key removes its resources and its error.
    fake.kv_delete("gloo/gloo.solo.io/v1/Upstream/apps/petstore");
    let deleted = wait_for(&mut updates, "the deletion", |s| s.resources.len() == 1).await;
    assert!(deleted.errors.is_empty());

    // The newest key deleted and its tombstone reaped: the prefix's index goes backwards.
    // The watch starts over from 0 and still sees the next write.
    fake.kv_put("gloo/mine/z.yaml", b"");
    fake.kv_delete("gloo/mine/z.yaml");
    let before = fake.kv_index("gloo/");
    fake.reap_tombstones();
    assert!(fake.kv_index("gloo/") < before);
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.kv_put(
        "gloo/gloo.solo.io/v1/Upstream/apps/back",
        KV_UPSTREAM.as_bytes(),
    );
    wait_for(
        &mut updates,
        "a write after the index went backwards",
        |s| s.resources.len() == 2,
    )
    .await;

    // Consul down: the last snapshot stays; back up: edits flow again.
    fake.stop().await;
    fake.kv_put(
        "gloo/gloo.solo.io/v1/Upstream/apps/late",
        KV_UPSTREAM.as_bytes(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(updates.borrow().resources.len(), 2);
    fake.start().await;
    wait_for(&mut updates, "the write made while Consul was down", |s| {
        s.resources.len() == 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_translator_an_endpoint_change_touches_no_route() {
    let fake = FakeConsul::start_new(&["dc1"]).await;
    fake.register("dc1", "n1", "10.0.1.1", "web", "web-1", &["v1"], "", 8080);
    let config = Arc::new(MemorySource::new("config"));
    config.set_yaml(
        "apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  virtualHost:\n    domains: ['*']\n    routes:\n    - matchers: [{prefix: /}]\n      routeAction: {single: {consul: {serviceName: web}}}\n",
    );
    let running = run(client(&fake), config);
    let mut source = running.subscribe();
    let mut endpoints = running.endpoints();
    let snapshot = wait_for(&mut source, "the web upstream", |s| {
        consul_upstreams(s).contains_key("consul-svc:web")
    })
    .await;
    let mut translator = Translator::new();
    let translation = translator.translate(&snapshot);
    assert!(!translation.reports.has_rejections());
    let found: Endpoints =
        (*wait_for(&mut endpoints, "web-1", |e| e.contains_key(&web())).await).clone();
    let before = translator.update_endpoints(found)["gateway-proxy"].clone();
    let cluster = "consul-svc:web_gloo-system";
    assert!(before.clusters.contains_key(cluster));
    assert_eq!(
        before.endpoints[cluster].resource().endpoints[0]
            .lb_endpoints
            .len(),
        1
    );

    // A second instance: only its ClusterLoadAssignment changes.
    let generation = source.borrow().generation;
    fake.register("dc1", "n2", "10.0.1.2", "web", "web-2", &["v1"], "", 8080);
    let found: Endpoints = (*wait_for(&mut endpoints, "web-2", |e| {
        e.get(&web()).is_some_and(|w| w.len() == 2)
    })
    .await)
        .clone();
    let after = translator.update_endpoints(found)["gateway-proxy"].clone();
    let cla = after.endpoints[cluster].resource();
    let addresses: Vec<String> = cla.endpoints[0]
        .lb_endpoints
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    assert_eq!(addresses.len(), 2);
    assert!(addresses[1].contains("10.0.1.2"), "{addresses:?}");
    let versions = |p: &gloo_core::xds::ProxyResources| {
        (
            p.routes
                .iter()
                .map(|(n, r)| (n.clone(), r.version.clone()))
                .collect::<Vec<_>>(),
            p.clusters
                .iter()
                .map(|(n, c)| (n.clone(), c.version.clone()))
                .collect::<Vec<_>>(),
            p.listeners
                .iter()
                .map(|(n, l)| (n.clone(), l.version.clone()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(versions(&before), versions(&after));
    assert_ne!(
        before.endpoints[cluster].version,
        after.endpoints[cluster].version
    );
    // Same tags, same data centers: the upstream did not change, so nothing re-translates.
    assert_eq!(source.borrow().generation, generation);
}
