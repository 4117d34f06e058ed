//! Real configuration from Gloo's documentation (copied under tests/data/docs, each file naming
//! the docs page it comes from): it loads, round-trips, and translates to the Envoy config the
//! docs describe.

mod common;

use std::path::PathBuf;

use common::*;
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action, route, route_action, route_match, Route,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{fault_abort, HttpFault};
use gloo_core::load::{parse_str, Format};
use gloo_core::model::{self, Kind, Resource};
use gloo_core::translate::Translation;
use prost::Message;

const ALL: &[&str] = &[
    "delegation.yaml",
    "direct_response.yaml",
    "faults.yaml",
    "header_matching.yaml",
    "headers_vhost.yaml",
    "headers_weighted.yaml",
    "local_ratelimit.yaml",
    "redirect.yaml",
    "shadowing.yaml",
    "timeout_retries.yaml",
    "upstream_group.yaml",
];

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/docs")
        .join(name)
}

fn text(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn load(name: &str) -> Translation {
    translate(&text(name))
}

/// Parses a spec back from its JSON and checks it is equal to the original.
fn round_trip<S>(kind: Kind, spec: &S)
where
    S: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(spec).expect("serialize");
    let back: S =
        serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{kind}: {e} in {json}"));
    assert_eq!(&back, spec, "{kind} round trip through {json}");
}

fn the_route<'a>(t: &'a Translation, vh: &str, index: usize) -> &'a Route {
    &vhost_routes(route_config(t), vh)[index]
}

#[test]
fn every_example_parses_without_errors() {
    for name in ALL {
        let parsed = parse_str(&text(name), *name, Format::Yaml);
        assert!(parsed.is_ok(), "{name}: {:?}", parsed.errors);
        assert!(!parsed.resources.is_empty(), "{name}");
    }
}

#[test]
fn every_example_round_trips_through_json() {
    for name in ALL {
        for loaded in parse_str(&text(name), *name, Format::Yaml).resources {
            let kind = loaded.resource.kind();
            match &loaded.resource {
                Resource::Gateway(o) => round_trip(kind, &o.spec),
                Resource::VirtualService(o) => round_trip(kind, &o.spec),
                Resource::RouteTable(o) => round_trip(kind, &o.spec),
                Resource::VirtualHostOption(o) => round_trip(kind, &o.spec),
                Resource::RouteOption(o) => round_trip(kind, &o.spec),
                Resource::Upstream(o) => round_trip(kind, &o.spec),
                Resource::UpstreamGroup(o) => round_trip(kind, &o.spec),
                Resource::Secret(o) => round_trip(kind, &o.spec),
                Resource::ConfigMap(o) | Resource::Artifact(o) => round_trip(kind, &o.spec),
                Resource::Settings(o) => round_trip(kind, &o.spec),
                Resource::AuthConfig(o) => round_trip(kind, &o.spec),
                Resource::RateLimitConfig(o) => round_trip(kind, &o.spec),
            }
            // The metadata round-trips too.
            let meta = serde_json::to_value(loaded.resource.metadata()).unwrap();
            let back: model::ObjectMeta = serde_json::from_value(meta).unwrap();
            assert_eq!(&back, loaded.resource.metadata(), "{name}");
        }
    }
}

#[test]
fn every_example_translates_without_rejections() {
    for name in ALL {
        let t = load(name);
        assert_no_rejections(&t);
        assert!(t.proxies.contains_key("gateway-proxy"), "{name}");
        // Everything prints as Envoy JSON.
        for p in t.proxies.values() {
            p.to_json().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn header_matching() {
    let t = load("header_matching.yaml");
    let r = the_route(&t, "gloo-system_test-header", 0);
    let m = r.r#match.as_ref().unwrap();
    assert_eq!(path_of(r), "prefix:/");
    let names: Vec<&str> = m.headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["header1", "header2", "header3", "header4", "header5"]
    );
    assert!(m.headers[3].invert_match && m.headers[4].invert_match && !m.headers[0].invert_match);
    // header3 is a safe regex.
    let h3 = serde_json::to_string(&format!("{:?}", m.headers[2].header_match_specifier)).unwrap();
    assert!(h3.contains("SafeRegex") && h3.contains("[a-z]{1}"), "{h3}");
    assert_eq!(cluster_of(r), "json-upstream_gloo-system");
    assert_eq!(
        route_action(r).host_rewrite_specifier,
        Some(route_action::HostRewriteSpecifier::AutoHostRewrite(
            envoy_types::pb::google::protobuf::BoolValue { value: true }
        ))
    );
    assert_eq!(route_config(&t).virtual_hosts[0].domains, ["foo"]);
    // A DNS-named static upstream is a STRICT_DNS cluster, not EDS.
    assert!(proxy(&t).clusters.contains_key("json-upstream_gloo-system"));
    assert!(!proxy(&t)
        .endpoints
        .contains_key("json-upstream_gloo-system"));
}

#[test]
fn local_rate_limiting() {
    use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_filter, HttpConnectionManager,
    };
    let t = load("local_ratelimit.yaml");
    let listener = proxy(&t).listeners["listener-::-8080"].resource();
    let hcm = match &listener.filter_chains[0].filters[0].config_type {
        Some(envoy_types::pb::envoy::config::listener::v3::filter::ConfigType::TypedConfig(a)) => {
            HttpConnectionManager::decode(a.value.as_slice()).unwrap()
        }
        other => panic!("{other:?}"),
    };
    let names: Vec<&str> = hcm.http_filters.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.local_ratelimit",
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router"
        ]
    );
    let Some(http_filter::ConfigType::TypedConfig(any)) = &hcm.http_filters[0].config_type else {
        panic!()
    };
    // The gateway's bucket: 1 token, refilled by 1 every 100s, with X-RateLimit headers.
    let gateway = LocalRateLimit::decode(any.value.as_slice()).unwrap();
    let bucket = gateway.token_bucket.as_ref().unwrap();
    assert_eq!(bucket.max_tokens, 1);
    assert_eq!(bucket.tokens_per_fill.as_ref().unwrap().value, 1);
    assert_eq!(bucket.fill_interval.as_ref().unwrap().seconds, 100);
    assert_eq!(gateway.enable_x_ratelimit_headers, 1);
    // `/status/200` and `/ip` share it; `/headers` has its own 3 tokens every 30s.
    for i in 0..2 {
        assert!(the_route(&t, "gloo-system_httpbin", i)
            .typed_per_filter_config
            .is_empty());
    }
    let headers = the_route(&t, "gloo-system_httpbin", 2);
    let own = LocalRateLimit::decode(
        headers.typed_per_filter_config["envoy.filters.http.local_ratelimit"]
            .value
            .as_slice(),
    )
    .unwrap();
    let bucket = own.token_bucket.as_ref().unwrap();
    assert_eq!(
        (
            bucket.max_tokens,
            bucket.fill_interval.as_ref().unwrap().seconds
        ),
        (3, 30)
    );
    assert_eq!(
        own.enable_x_ratelimit_headers, 1,
        "the gateway's flag is copied"
    );
}

#[test]
fn delegation_tree() {
    let t = load("delegation.yaml");
    let routes = vhost_routes(route_config(&t), "gloo-system_example");
    // `/b/3` is a regex child route: kept, as in Gloo, because its pattern starts with `/b`.
    let ps = paths(routes);
    assert_eq!(&ps[..2], ["prefix:/a/1", "prefix:/a/2"]);
    assert!(ps.contains(&"regex:/b/3".to_string()), "{ps:?}");
    assert!(ps.contains(&"path:/b/c/4".to_string()), "{ps:?}");
    assert_eq!(cluster_of(&routes[0]), "foo-upstream_gloo-system");
    assert_eq!(cluster_of(&routes[1]), "bar-upstream_gloo-system");
    let last = routes.last().unwrap();
    assert_eq!(path_of(last), "path:/b/c/4");
    assert_eq!(cluster_of(last), "qux-upstream_gloo-system");
    assert_eq!(
        status(
            &t,
            Kind::RouteTable,
            &gloo_core::model::ResourceRef::new("a", "a-routes")
        )
        .state,
        Accepted
    );
    assert_eq!(
        status(
            &t,
            Kind::RouteTable,
            &gloo_core::model::ResourceRef::new("c", "c-routes")
        )
        .state,
        Accepted
    );
}

#[test]
fn upstream_group_weights() {
    let t = load("upstream_group.yaml");
    for i in 0..2 {
        let r = the_route(&t, "gloo-system_default", i);
        let Some(route_action::ClusterSpecifier::WeightedClusters(w)) =
            &route_action(r).cluster_specifier
        else {
            panic!("{r:?}")
        };
        let got: Vec<(&str, u32)> = w
            .clusters
            .iter()
            .map(|c| (c.name.as_str(), c.weight.as_ref().unwrap().value))
            .collect();
        assert_eq!(
            got,
            [
                ("default-myservice-v1-8080_gloo-system", 9),
                ("default-myservice-v2-8080_gloo-system", 1)
            ]
        );
    }
    assert_eq!(
        paths(vhost_routes(route_config(&t), "gloo-system_default")),
        ["prefix:/myservice", "prefix:/some/other/path"]
    );
    let clusters: Vec<&String> = proxy(&t).clusters.keys().collect();
    assert_eq!(
        clusters,
        [
            "default-myservice-v1-8080_gloo-system",
            "default-myservice-v2-8080_gloo-system"
        ]
    );
}

#[test]
fn timeouts_and_retries() {
    let t = load("timeout_retries.yaml");
    let a = route_action(the_route(&t, "gloo-system_default", 0));
    assert_eq!(a.timeout.as_ref().map(|d| d.seconds), Some(20));
    let retry = a.retry_policy.as_ref().unwrap();
    assert_eq!(retry.retry_on, "connect-failure");
    assert_eq!(retry.num_retries.as_ref().map(|n| n.value), Some(3));
    assert_eq!(retry.per_try_timeout.as_ref().map(|d| d.seconds), Some(5));

    // vs-with-retries: snake_case `retriable_status_codes` is read like protobuf JSON does.
    let b = route_action(the_route(&t, "gloo-system_vs-with-retries", 0));
    let retry = b.retry_policy.as_ref().unwrap();
    assert_eq!(retry.retry_on, "retriable-status-codes");
    assert_eq!(retry.retriable_status_codes, [502, 503, 504, 429]);
    let backoff = retry.retry_back_off.as_ref().unwrap();
    assert_eq!(backoff.base_interval.as_ref().map(|d| d.seconds), Some(1));
    assert_eq!(backoff.max_interval.as_ref().map(|d| d.seconds), Some(1));
}

#[test]
fn fault_injection() {
    let t = load("faults.yaml");
    let r = the_route(&t, "gloo-system_default", 0);
    let any = r
        .typed_per_filter_config
        .get("envoy.filters.http.fault")
        .expect("fault filter config");
    let fault = HttpFault::decode(any.value.as_slice()).unwrap();
    let abort = fault.abort.unwrap();
    assert_eq!(
        abort.error_type,
        Some(fault_abort::ErrorType::HttpStatus(503))
    );
    // 2.5% as a fraction per million.
    assert_eq!(abort.percentage.unwrap().numerator, 25_000);
    let delay = fault.delay.unwrap();
    assert_eq!(delay.percentage.unwrap().numerator, 53_000);
}

#[test]
fn shadowing() {
    let t = load("shadowing.yaml");
    let a = route_action(the_route(&t, "gloo-system_default", 0));
    assert_eq!(a.request_mirror_policies.len(), 1);
    let mirror = &a.request_mirror_policies[0];
    assert_eq!(mirror.cluster, "petstore-v2_gloo-system");
    assert_eq!(mirror.host_rewrite_literal, "petstore-v2.example.com");
    let fraction = mirror
        .runtime_fraction
        .as_ref()
        .unwrap()
        .default_value
        .unwrap();
    assert_eq!(fraction.numerator, 1_000_000);
    // Both the primary and the shadow upstream are missing: warnings, never rejections.
    assert_eq!(
        status(&t, Kind::VirtualService, &gs("default")).state,
        Warning
    );
}

#[test]
fn header_manipulation() {
    let t = load("headers_vhost.yaml");
    let vh = &route_config(&t).virtual_hosts[0];
    assert_eq!(
        vh.request_headers_to_remove,
        ["x-my-header", "x-your-header"]
    );
    assert_eq!(route_action(&vh.routes[0]).prefix_rewrite, "/api/pets");

    let t = load("headers_weighted.yaml");
    let r = the_route(&t, "gloo-system_default", 0);
    let Some(route_action::ClusterSpecifier::WeightedClusters(w)) =
        &route_action(r).cluster_specifier
    else {
        panic!("{r:?}")
    };
    assert!(w.clusters[0].request_headers_to_add.is_empty());
    let added = &w.clusters[1].request_headers_to_add[0];
    let header = added.header.as_ref().unwrap();
    assert_eq!(
        (header.key.as_str(), header.value.as_str()),
        ("HEADER_NAME", "HEADER_VALUE")
    );
}

#[test]
fn redirect() {
    let t = load("redirect.yaml");
    let r = the_route(&t, "gloo-system_test-redirect", 0);
    let Some(route::Action::Redirect(redirect)) = &r.action else {
        panic!("{r:?}")
    };
    assert_eq!(redirect.host_redirect, "google.com");
    assert_eq!(
        redirect.response_code,
        redirect_action::RedirectResponseCode::MovedPermanently as i32
    );
}

#[test]
fn direct_response() {
    let t = load("direct_response.yaml");
    let r = the_route(&t, "gloo-system_test-direct-response", 0);
    let Some(route::Action::DirectResponse(d)) = &r.action else {
        panic!("{r:?}")
    };
    assert_eq!(d.status, 200);
    let body = serde_json::to_string(&format!("{:?}", d.body)).unwrap();
    assert!(body.contains("Hello, world!"), "{body}");
    assert!(
        matches!(r.r#match.as_ref().unwrap().path_specifier, Some(route_match::PathSpecifier::Prefix(ref p)) if p == "/")
    );
    // No upstream is referenced, so no cluster.
    assert!(proxy(&t).clusters.is_empty());
}
