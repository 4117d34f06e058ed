//! Subset load balancing, as Gloo's translator emits it: an upstream's `subsetSpec` becomes
//! the cluster's `lbSubsetConfig` (`createLbConfig`), endpoint labels the endpoints'
//! `envoy.lb` metadata with `""` for missing subset keys (`getLbMetadata`), a destination's
//! `subset` the route's or weighted cluster's `metadataMatch` (`getSubsetMatch`), Consul
//! destinations' tags and data centers their `tag_`/`dc_` flags (`consulMetadataMatch`), and
//! `checkThatSubsetMatchesUpstream`'s warning and error.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::{Endpoint, Endpoints, Translator};
use serde_json::{json, Value};

/// The Kubernetes upstream `gloo-system.default-web-8080` with `subset_spec` (YAML block
/// under `subsetSpec`, empty for none).
fn kube_upstream(subset_spec: &str) -> String {
    let mut spec =
        "kube:\n  serviceName: web\n  serviceNamespace: default\n  servicePort: 8080\n".to_string();
    if !subset_spec.is_empty() {
        spec.push_str(&format!("  subsetSpec:\n{}", reindent(subset_spec, 4)));
    }
    resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: default-web-8080, namespace: gloo-system}",
        &spec,
    )
}

const KUBE: &str = "{upstream: {name: default-web-8080, namespace: gloo-system}";

fn cluster_json(t: &gloo_core::translate::Translation, name: &str) -> Value {
    proxy_json(t)["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

fn labelled(address: &str, labels: &[(&str, &str)]) -> Endpoint {
    let mut e = Endpoint::new(address, 8080);
    e.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    e
}

#[test]
fn a_subset_spec_becomes_the_clusters_lb_subset_config() {
    let t = translate(&docs(&[
        &kube_upstream(
            "
            selectors:
            - keys: [version]
            - keys: [version, color]
              singleHostPerSubset: true
            fallbackPolicy: DEFAULT_SUBSET
            defaultSubset: {values: {version: v1}}
            ",
        ),
        &vs("web", "domains: ['*']\nroutes:\n- routeAction: {single: {upstream: {name: default-web-8080}}}\n"),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        cluster_json(&t, "default-web-8080_gloo-system")["lbSubsetConfig"],
        json!({
            "fallbackPolicy": "DEFAULT_SUBSET",
            "defaultSubset": {"version": "v1"},
            "subsetSelectors": [
                {"keys": ["version"]},
                {"keys": ["version", "color"], "singleHostPerSubset": true},
            ],
        })
    );
    // Gloo's default fallback is ANY_ENDPOINT (Envoy's is NO_FALLBACK, so it is always set).
    let t = translate(&docs(&[
        &kube_upstream("selectors: [{keys: [version]}]"),
        &vs(
            "web",
            &format!("domains: ['*']\nroutes:\n- routeAction: {{single: {KUBE}}}}}\n"),
        ),
    ]));
    assert_eq!(
        cluster_json(&t, "default-web-8080_gloo-system")["lbSubsetConfig"],
        json!({"fallbackPolicy": "ANY_ENDPOINT", "subsetSelectors": [{"keys": ["version"]}]})
    );
    // No subsetSpec, no subset config.
    let t = translate(&docs(&[
        &kube_upstream(""),
        &vs(
            "web",
            &format!("domains: ['*']\nroutes:\n- routeAction: {{single: {KUBE}}}}}\n"),
        ),
    ]));
    assert!(cluster_json(&t, "default-web-8080_gloo-system")
        .get("lbSubsetConfig")
        .is_none());
}

#[test]
fn endpoint_labels_become_envoy_lb_metadata_with_empty_values_for_missing_subset_keys() {
    let mut translator = Translator::new();
    let t = translate_with(
        &mut translator,
        &docs(&[
            &kube_upstream("selectors: [{keys: [version, stage]}]"),
            &vs(
                "web",
                &format!("domains: ['*']\nroutes:\n- routeAction: {{single: {KUBE}}}}}\n"),
            ),
        ]),
    );
    assert_no_rejections(&t);
    let mut endpoints = Endpoints::new();
    endpoints.insert(
        gs("default-web-8080"),
        vec![
            labelled("10.0.0.1", &[("version", "v1"), ("app", "web")]),
            labelled("10.0.0.2", &[]),
        ],
    );
    let updated = translator.update_endpoints(endpoints).clone();
    let cla = updated["gateway-proxy"].endpoints["default-web-8080_gloo-system"].resource();
    let json = gloo_core::xds::to_json(cla).expect("json");
    let metadata: Vec<Value> = json["endpoints"][0]["lbEndpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"].clone())
        .collect();
    assert_eq!(
        metadata,
        [
            json!({"filterMetadata": {"envoy.lb": {"app": "web", "stage": "", "version": "v1"}}}),
            json!({"filterMetadata": {"envoy.lb": {"stage": "", "version": ""}}}),
        ]
    );
}

#[test]
fn a_destination_subset_becomes_the_metadata_match_of_the_route_and_of_weighted_clusters() {
    let group = resource(
        "gloo.solo.io/v1",
        "UpstreamGroup",
        "{name: canary, namespace: gloo-system}",
        "destinations:\n- destination: {upstream: {name: default-web-8080}, subset: {values: {version: v2}}}\n  weight: 1\n",
    );
    let t = translate(&docs(&[
        &kube_upstream("selectors: [{keys: [version]}, {keys: [version, color]}]"),
        &group,
        &vs(
            "web",
            &format!(
                "
                domains: ['*']
                routes:
                - matchers: [{{prefix: /single}}]
                  routeAction: {{single: {{upstream: {{name: default-web-8080}}, subset: {{values: {{version: v1, color: blue}}}}}}}}
                - matchers: [{{prefix: /multi}}]
                  routeAction:
                    multi:
                      destinations:
                      - destination: {{upstream: {{name: default-web-8080}}, subset: {{values: {{version: v1}}}}}}
                        weight: 9
                      - destination: {KUBE}}}
                        weight: 1
                - matchers: [{{prefix: /group}}]
                  routeAction: {{upstreamGroup: {{name: canary}}}}
                "
            ),
        ),
    ]));
    assert_no_rejections(&t);
    let routes = &vhost_json(&t, "web")["routes"];
    assert_eq!(
        routes[0]["route"]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"color": "blue", "version": "v1"}}})
    );
    let weighted = &routes[1]["route"]["weightedClusters"]["clusters"];
    assert_eq!(
        weighted[0]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"version": "v1"}}})
    );
    assert!(weighted[1].get("metadataMatch").is_none(), "{weighted}");
    assert!(routes[1]["route"].get("metadataMatch").is_none());
    assert_eq!(
        routes[2]["route"]["weightedClusters"]["clusters"][0]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"version": "v2"}}})
    );
}

/// A Consul upstream as Consul discovery writes it.
fn consul_upstream(extra: &str) -> String {
    resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: 'consul-svc:web', namespace: gloo-system}",
        &format!("consul:\n  serviceName: web\n{}", reindent(extra, 2)),
    )
}

#[test]
fn consul_subsets_follow_tags_and_data_centers() {
    let t = translate(&docs(&[
        &consul_upstream("serviceTags: [v2, v1]\ndataCenters: [dc2, dc1]\n"),
        &vs(
            "web",
            "
            domains: ['*']
            routes:
            - matchers: [{prefix: /tagged}]
              routeAction: {single: {consul: {serviceName: web, tags: [v1]}}}
            - matchers: [{prefix: /dc}]
              routeAction: {single: {consul: {serviceName: web, dataCenters: [dc2]}}}
            - matchers: [{prefix: /any}]
              routeAction: {single: {consul: {serviceName: web}}}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    // Gloo's Upstream_Consul.GetSubsetSpec: data centers, tags, and both (keys sorted).
    assert_eq!(
        cluster_json(&t, "consul-svc:web_gloo-system")["lbSubsetConfig"],
        json!({
            "fallbackPolicy": "ANY_ENDPOINT",
            "subsetSelectors": [
                {"keys": ["dc_dc1", "dc_dc2"]},
                {"keys": ["tag_v1", "tag_v2"]},
                {"keys": ["dc_dc1", "dc_dc2", "tag_v1", "tag_v2"]},
            ],
        })
    );
    let routes = &vhost_json(&t, "web")["routes"];
    assert_eq!(
        routes[0]["route"]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"tag_v1": "1", "tag_v2": "0"}}})
    );
    assert_eq!(
        routes[1]["route"]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"dc_dc1": "0", "dc_dc2": "1"}}})
    );
    assert!(routes[2]["route"].get("metadataMatch").is_none());
    // subsetTags, when set, replace the service tags.
    let t = translate(&docs(&[
        &consul_upstream("serviceTags: [v1, v2, extra]\nsubsetTags: [v1]\n"),
        &vs(
            "web",
            "domains: ['*']\nroutes:\n- routeAction: {single: {consul: {serviceName: web, tags: [v1, extra]}}}\n",
        ),
    ]));
    assert_eq!(
        vhost_json(&t, "web")["routes"][0]["route"]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"tag_v1": "1"}}})
    );
}

#[test]
fn a_subset_on_an_upstream_without_subsets_is_a_warning_and_is_still_served() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "web",
            "domains: ['*']\nroutes:\n- routeAction: {single: {upstream: {name: up}, subset: {values: {version: v1}}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("web"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].routeAction.single.subset: route has a subset config, but the upstream does not"],
    );
    let route = &vhost_json(&t, "web")["routes"][0];
    assert_eq!(route["route"]["cluster"], "up_gloo-system");
    assert_eq!(
        route["route"]["metadataMatch"],
        json!({"filterMetadata": {"envoy.lb": {"version": "v1"}}})
    );
}

#[test]
fn a_subset_no_selector_of_its_upstream_has_is_an_error_and_the_route_answers_503() {
    let t = translate(&docs(&[
        &kube_upstream("selectors: [{keys: [version, color]}]"),
        &vs(
            "web",
            &format!(
                "
                domains: ['*']
                routes:
                - matchers: [{{prefix: /bad}}]
                  routeAction:
                    multi:
                      destinations:
                      - destination: {{upstream: {{name: default-web-8080}}, subset: {{values: {{version: v1}}}}}}
                        weight: 1
                - matchers: [{{prefix: /good}}]
                  routeAction: {{single: {KUBE}}}}}
                "
            ),
        ),
    ]));
    let status = status(&t, Kind::VirtualService, &gs("web"));
    assert_eq!(
        status.errors,
        ["spec.virtualHost.routes[0].routeAction.multi.destinations[0].destination.subset: route has a subset config, but none of the subsets in the upstream match it (no selector of upstream gloo-system.default-web-8080 has exactly the keys [\"version\"]); the route answers as an invalid route (503)"],
        "{}",
        t.reports.to_text()
    );
    let routes = &vhost_json(&t, "web")["routes"];
    assert_eq!(routes[0]["directResponse"]["status"], 503);
    assert_eq!(
        routes[1]["route"]["cluster"],
        "default-web-8080_gloo-system"
    );
}
