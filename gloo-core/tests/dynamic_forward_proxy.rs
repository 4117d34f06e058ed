//! A Gateway's `dynamicForwardProxy` and routes whose `routeAction` is `dynamicForwardProxy`,
//! as Gloo's `dynamic_forward_proxy` plugin translates them: Envoy's
//! `envoy.filters.http.dynamic_forward_proxy` filter with the listener's DNS cache (Gloo's
//! `DuringStage(OutAuthStage)`), one generated `solo_io_generated_dfp:<hash>` cluster per
//! distinct config with the identical DNS cache, the config's (else Settings') circuit
//! breakers and its TLS, and on each such route that cluster and the filter's per-route host
//! rewrite. What Gloo's proto rules refuse rejects the Gateway naming the field; a route that
//! forwards dynamically on a Gateway without the option answers 503, with a warning.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::{Translator, DFP_CLUSTER_PREFIX, DYNAMIC_FORWARD_PROXY_FILTER};
use serde_json::{json, Value};

const FILTER_CONFIG: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig";
const PER_ROUTE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.PerRouteConfig";
const CLUSTER_CONFIG: &str =
    "type.googleapis.com/envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig";

/// A Gateway `gloo-system.<name>` on `port` with `options` (a YAML block) as its
/// `httpGateway.options`.
fn gateway_on(name: &str, port: u32, options: &str) -> String {
    gateway(
        &format!("{{name: {name}, namespace: gloo-system}}"),
        &format!(
            "bindAddress: '::'\nbindPort: {port}\nhttpGateway:\n  options:\n{}",
            reindent(options, 4)
        ),
    )
}

/// The Gateway `gateway-proxy` on 8080 with `options` as its `httpGateway.options`.
fn gateway_with(options: &str) -> String {
    gateway_on("gateway-proxy", 8080, options)
}

/// The guide's VirtualService (docs/content/guides/traffic_management/listener_configuration/
/// http_connection_manager/dfp/_index.md) with three more routes: a literal host rewrite, no
/// rewrite at all (`{}`, the CONNECT tunnel of the same guide), and a plain upstream route.
fn forward_proxy_vs() -> String {
    vs(
        "test-static",
        "
domains: ['foo']
routes:
- matchers: [{prefix: /header}]
  routeAction:
    dynamicForwardProxy:
      autoHostRewriteHeader: x-rewrite-me
- matchers: [{prefix: /literal}]
  routeAction:
    dynamicForwardProxy:
      hostRewrite: example.com
- matchers: [{prefix: /own}]
  routeAction:
    dynamicForwardProxy: {}
- matchers: [{prefix: /}]
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
    )
}

/// The route with prefix `prefix` of `vhost` (JSON).
fn route_with_prefix(vhost: &Value, prefix: &str) -> Value {
    vhost["routes"]
        .as_array()
        .and_then(|routes| {
            routes
                .iter()
                .find(|r| r["match"]["prefix"] == prefix)
                .cloned()
        })
        .unwrap_or_else(|| panic!("no route {prefix} in {vhost:#}"))
}

/// The HTTP filter named `name` of the listener on 8080.
fn filter(t: &gloo_core::translate::Translation, name: &str) -> Value {
    http_filters(t)
        .into_iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} filter in {:?}", filter_names(t)))
}

/// The generated dynamic forward proxy clusters of the default proxy, as JSON.
fn generated_clusters(t: &gloo_core::translate::Translation) -> Vec<Value> {
    proxy_json(t)["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with(DFP_CLUSTER_PREFIX))
        })
        .cloned()
        .collect()
}

/// The one generated cluster; panics unless there is exactly one.
fn generated_cluster(t: &gloo_core::translate::Translation) -> Value {
    let clusters = generated_clusters(t);
    assert_eq!(clusters.len(), 1, "{clusters:#?}");
    clusters[0].clone()
}

#[test]
fn the_guides_forward_proxy_is_envoys_filter_a_generated_cluster_and_the_routes_host_rewrites() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("dynamicForwardProxy: {}\n"),
        &forward_proxy_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("test-static"),
        Accepted,
        &[],
        &[],
    );
    assert_eq!(
        DYNAMIC_FORWARD_PROXY_FILTER,
        "envoy.filters.http.dynamic_forward_proxy"
    );

    // The filter: Envoy's defaults but the lookup family (Gloo's default V4_PREFERRED, not
    // Envoy's AUTO), under a name generated from the cache config.
    let filter = filter(&t, DYNAMIC_FORWARD_PROXY_FILTER);
    let cache = filter["typedConfig"]["dnsCacheConfig"].clone();
    let cache_name = cache["name"].as_str().expect("a cache name").to_string();
    assert!(
        cache_name.starts_with("solo_io_generated_dfp:"),
        "{cache_name}"
    );
    assert_eq!(
        filter,
        json!({
            "name": "envoy.filters.http.dynamic_forward_proxy",
            "typedConfig": {
                "@type": FILTER_CONFIG,
                "dnsCacheConfig": {"name": cache_name, "dnsLookupFamily": "V4_PREFERRED"},
            },
        })
    );

    // The cluster: Gloo's generated one, with the filter's very DNS cache.
    let cluster = generated_cluster(&t);
    let name = cluster["name"].as_str().unwrap().to_string();
    assert!(name.starts_with("solo_io_generated_dfp:"), "{name}");
    assert_eq!(
        cluster,
        json!({
            "name": name,
            "connectTimeout": "5s",
            "lbPolicy": "CLUSTER_PROVIDED",
            "clusterType": {
                "name": "envoy.clusters.dynamic_forward_proxy",
                "typedConfig": {"@type": CLUSTER_CONFIG, "dnsCacheConfig": cache},
            },
        })
    );

    // Each dynamic route goes to that cluster, with its host rewrite for the filter.
    let vhost = vhost_json(&t, "test-static");
    let header = route_with_prefix(&vhost, "/header");
    assert_eq!(header["route"]["cluster"], name.as_str());
    assert_eq!(
        header["typedPerFilterConfig"],
        json!({DYNAMIC_FORWARD_PROXY_FILTER: {"@type": PER_ROUTE, "hostRewriteHeader": "x-rewrite-me"}})
    );
    let literal = route_with_prefix(&vhost, "/literal");
    assert_eq!(literal["route"]["cluster"], name.as_str());
    assert_eq!(
        literal["typedPerFilterConfig"],
        json!({DYNAMIC_FORWARD_PROXY_FILTER: {"@type": PER_ROUTE, "hostRewriteLiteral": "example.com"}})
    );
    // `{}`: the request's own host (Gloo refuses it).
    let own = route_with_prefix(&vhost, "/own");
    assert_eq!(own["route"]["cluster"], name.as_str());
    assert_eq!(
        own["typedPerFilterConfig"],
        json!({DYNAMIC_FORWARD_PROXY_FILTER: {"@type": PER_ROUTE}})
    );
    // The upstream route is untouched.
    let plain = route_with_prefix(&vhost, "/");
    assert_eq!(plain["route"]["cluster"], "up_gloo-system");
    assert!(plain.get("typedPerFilterConfig").is_none(), "{plain:#}");
}

#[test]
fn every_dns_cache_field_reaches_the_filter_and_the_cluster_identically() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "
dynamicForwardProxy:
  saveUpstreamAddress: true
  dnsCacheConfig:
    dnsLookupFamily: V4_ONLY
    dnsRefreshRate: 30s
    hostTtl: 86400s
    maxHosts: 512
    dnsFailureRefreshRate: {baseInterval: 2s, maxInterval: 20s}
    dnsCacheCircuitBreaker: {maxPendingRequests: 64}
    caresDns:
      resolvers:
      - socketAddress: {address: 127.0.0.53, portValue: 53}
      - socketAddress: {address: '::1', portValue: 5353, protocol: UDP}
      dnsResolverOptions: {useTcpForDnsLookups: true, noDefaultSearchDomain: true}
    preresolveHostnames:
    - {address: example.com, portValue: 443}
    dnsQueryTimeout: 5s
",
        ),
        &forward_proxy_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let config = filter(&t, DYNAMIC_FORWARD_PROXY_FILTER)["typedConfig"].clone();
    assert_eq!(config["saveUpstreamAddress"], true);
    let mut cache = config["dnsCacheConfig"].clone();
    let cache_name = cache
        .as_object_mut()
        .and_then(|c| c.remove("name"))
        .expect("a cache name");
    assert!(cache_name
        .as_str()
        .is_some_and(|n| n.starts_with(DFP_CLUSTER_PREFIX)));
    assert_eq!(
        cache,
        json!({
            "dnsLookupFamily": "V4_ONLY",
            "dnsRefreshRate": "30s",
            "hostTtl": "86400s",
            "maxHosts": 512,
            "dnsFailureRefreshRate": {"baseInterval": "2s", "maxInterval": "20s"},
            "dnsCacheCircuitBreaker": {"maxPendingRequests": 64},
            "typedDnsResolverConfig": {
                "name": "envoy.network.dns_resolver.cares",
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
                    "resolvers": [
                        {"socketAddress": {"address": "127.0.0.53", "portValue": 53}},
                        {"socketAddress": {"address": "::1", "portValue": 5353, "protocol": "UDP"}},
                    ],
                    "dnsResolverOptions": {"useTcpForDnsLookups": true, "noDefaultSearchDomain": true},
                },
            },
            "preresolveHostnames": [{"address": "example.com", "portValue": 443}],
            "dnsQueryTimeout": "5s",
        })
    );
    // Envoy requires the cluster's cache to be the filter's, name and all.
    let cluster = generated_cluster(&t);
    assert_eq!(
        cluster["clusterType"]["typedConfig"]["dnsCacheConfig"],
        config["dnsCacheConfig"]
    );
    // The routes name the cluster.
    let vhost = vhost_json(&t, "test-static");
    assert_eq!(
        route_with_prefix(&vhost, "/header")["route"]["cluster"],
        cluster["name"]
    );

    // Apple's resolver is named as Gloo names it, with its (empty) config; only Envoy builds
    // for Apple platforms have it (envoy_validate shows Linux Envoy refusing it), so the
    // Gateway is served with a warning.
    let apple = translate(&docs(&[
        &up(),
        &gateway_with("dynamicForwardProxy: {dnsCacheConfig: {appleDns: {}}}\n"),
        &forward_proxy_vs(),
    ]));
    assert_status(
        &apple,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Warning,
        &[],
        &["spec.httpGateway.options.dynamicForwardProxy.dnsCacheConfig.appleDns: only Envoy builds for Apple platforms have Apple's DNS resolver; any other Envoy refuses this listener and its forward proxy cluster"],
    );
    assert_eq!(
        filter(&apple, DYNAMIC_FORWARD_PROXY_FILTER)["typedConfig"]["dnsCacheConfig"]
            ["typedDnsResolverConfig"],
        json!({
            "name": "envoy.network.dns_resolver.apple",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.apple.v3.AppleDnsResolverConfig"},
        })
    );
}

#[test]
fn the_filter_runs_during_the_out_auth_stage_before_the_lambda_filter() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: aws-creds, namespace: gloo-system}\nstringData:\n  aws_access_key_id: AKIDEXAMPLE\n  aws_secret_access_key: s3cr3t\n";
    let lambda = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: lambda, namespace: gloo-system}\nspec:\n  aws:\n    region: us-east-1\n    secretRef: {name: aws-creds, namespace: gloo-system}\n    lambdaFunctions:\n    - {logicalName: echo, lambdaFunctionName: echo}\n";
    let t = translate(&docs(&[
        &up(),
        secret,
        lambda,
        &gateway_with(
            "dynamicForwardProxy: {}\nbuffer: {maxRequestBytes: 1024}\ngzip: {}\nhealthCheck: {path: /healthz}\n",
        ),
        &forward_proxy_vs(),
    ]));
    assert_no_rejections(&t);
    // Gloo's stages: gzip (Fault), gRPC-Web and the health check (after AuthZ), then OutAuth:
    // the dynamic forward proxy and the Lambda filter (same stage, by name), then the buffer
    // (Route) and the router.
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.compressor",
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.health_check",
            "envoy.filters.http.dynamic_forward_proxy",
            "io.solo.aws_lambda",
            "envoy.filters.http.buffer",
            "envoy.filters.http.router",
        ]
    );
}

#[test]
fn circuit_breakers_come_from_the_config_else_from_settings() {
    let settings = "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {name: default, namespace: gloo-system}\nspec:\n  gloo:\n    circuitBreakers: {maxConnections: 7, maxRetries: 2}\n";
    // The guide's circuit breakers win over Settings'.
    let own = translate(&docs(&[
        &up(),
        settings,
        &gateway_with(
            "
dynamicForwardProxy:
  circuitBreakers:
    maxConnections: 40000
    maxPendingRequests: 40000
    maxRequests: 40000
    maxRetries: 40000
    trackRemaining: true
",
        ),
        &forward_proxy_vs(),
    ]));
    assert_no_rejections(&own);
    assert_eq!(
        generated_cluster(&own)["circuitBreakers"],
        json!({"thresholds": [{
            "maxConnections": 40000,
            "maxPendingRequests": 40000,
            "maxRequests": 40000,
            "maxRetries": 40000,
            "trackRemaining": true,
        }]})
    );
    // None of its own: Settings'.
    let fallback = translate(&docs(&[
        &up(),
        settings,
        &gateway_with("dynamicForwardProxy: {}\n"),
        &forward_proxy_vs(),
    ]));
    assert_eq!(
        generated_cluster(&fallback)["circuitBreakers"],
        json!({"thresholds": [{"maxConnections": 7, "maxRetries": 2}]})
    );
    // Neither: Envoy's defaults.
    let none = translate(&docs(&[
        &up(),
        &gateway_with("dynamicForwardProxy: {}\n"),
        &forward_proxy_vs(),
    ]));
    assert!(generated_cluster(&none).get("circuitBreakers").is_none());
}

const TLS_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: tls, namespace: gloo-system}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: CERT-PEM\n  tls.key: KEY-PEM\n  ca.crt: CA-PEM\n";

#[test]
fn ssl_config_is_resolved_as_an_upstreams_into_the_clusters_tls_socket() {
    let t = translate(&docs(&[
        &up(),
        TLS_SECRET,
        &gateway_with(
            "dynamicForwardProxy:\n  sslConfig:\n    secretRef: {name: tls}\n    sni: example.com\n    verifySubjectAltName: [example.com]\n",
        ),
        &forward_proxy_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let cluster = generated_cluster(&t);
    let socket = &cluster["transportSocket"];
    assert_eq!(socket["name"], "envoy.transport_sockets.tls");
    let tls = &socket["typedConfig"];
    assert_eq!(
        tls["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    );
    assert_eq!(tls["sni"], "example.com");
    let common = &tls["commonTlsContext"];
    // Inline bytes print as base64: "CERT-PEM", "KEY-PEM", "CA-PEM".
    assert_eq!(
        common["tlsCertificates"][0]["certificateChain"]["inlineBytes"],
        "Q0VSVC1QRU0="
    );
    assert_eq!(
        common["tlsCertificates"][0]["privateKey"]["inlineBytes"],
        "S0VZLVBFTQ=="
    );
    assert_eq!(
        common["validationContext"]["trustedCa"]["inlineBytes"],
        "Q0EtUEVN"
    );
    // The route still names the cluster (its name covers the TLS settings).
    assert_eq!(
        route_with_prefix(&vhost_json(&t, "test-static"), "/own")["route"]["cluster"],
        cluster["name"]
    );

    // A Secret that is not there rejects the Gateway, as it rejects an Upstream.
    let missing = translate(&docs(&[
        &up(),
        &gateway_with("dynamicForwardProxy:\n  sslConfig:\n    secretRef: {name: nope}\n"),
        &forward_proxy_vs(),
    ]));
    assert_status(
        &missing,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Rejected,
        &["spec.httpGateway.options.dynamicForwardProxy.sslConfig.secretRef: Secret gloo-system.nope not found"],
        &[],
    );
}

#[test]
fn equal_configs_share_one_cluster_and_different_ones_get_their_own() {
    let same = translate(&docs(&[
        &up(),
        &gateway_on(
            "a",
            8080,
            "dynamicForwardProxy: {dnsCacheConfig: {hostTtl: 60s}}\n",
        ),
        &gateway_on(
            "b",
            8081,
            "dynamicForwardProxy: {dnsCacheConfig: {hostTtl: 60s}}\n",
        ),
        &forward_proxy_vs(),
    ]));
    assert_no_rejections(&same);
    let shared = generated_cluster(&same)["name"].clone();
    let cluster_on = |t: &gloo_core::translate::Translation, routes: &str| {
        let rc = route_config_of(proxy(t), routes);
        cluster_of(
            vhost_routes(rc, "gloo-system_test-static")
                .iter()
                .find(|r| path_of(r) == "prefix:/own")
                .expect("the /own route"),
        )
        .to_string()
    };
    assert_eq!(cluster_on(&same, "listener-::-8080-routes"), shared);
    assert_eq!(cluster_on(&same, "listener-::-8081-routes"), shared);

    let different = translate(&docs(&[
        &up(),
        &gateway_on(
            "a",
            8080,
            "dynamicForwardProxy: {dnsCacheConfig: {hostTtl: 60s}}\n",
        ),
        &gateway_on(
            "b",
            8081,
            "dynamicForwardProxy: {dnsCacheConfig: {hostTtl: 90s}}\n",
        ),
        &forward_proxy_vs(),
    ]));
    assert_no_rejections(&different);
    let names: Vec<String> = generated_clusters(&different)
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let on_a = cluster_on(&different, "listener-::-8080-routes");
    let on_b = cluster_on(&different, "listener-::-8081-routes");
    assert_ne!(on_a, on_b);
    assert!(names.contains(&on_a) && names.contains(&on_b), "{names:?}");
    // Each cluster's cache is its gateway's: the 90s one is b's.
    let b = generated_clusters(&different)
        .into_iter()
        .find(|c| c["name"] == on_b.as_str())
        .unwrap();
    assert_eq!(
        b["clusterType"]["typedConfig"]["dnsCacheConfig"]["hostTtl"],
        "90s"
    );
}

#[test]
fn a_gateway_edit_renames_the_cluster_its_cached_routes_go_to() {
    let mut translator = Translator::new();
    let with = |ttl: &str| {
        docs(&[
            &up(),
            &gateway_with(&format!(
                "dynamicForwardProxy: {{dnsCacheConfig: {{hostTtl: {ttl}}}}}\n"
            )),
            &forward_proxy_vs(),
        ])
    };
    let first = translate_with(&mut translator, &with("60s"));
    let second = translate_with(&mut translator, &with("90s"));
    let route_cluster = |t: &gloo_core::translate::Translation| {
        route_with_prefix(&vhost_json(t, "test-static"), "/own")["route"]["cluster"].clone()
    };
    assert_ne!(route_cluster(&first), route_cluster(&second));
    assert_eq!(route_cluster(&second), generated_cluster(&second)["name"]);
}

#[test]
fn both_host_rewrites_reject_the_virtual_service() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("dynamicForwardProxy: {}\n"),
        &vs(
            "both",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction:\n    dynamicForwardProxy: {hostRewrite: a.example.com, autoHostRewriteHeader: x-host}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("both"),
        Rejected,
        &["spec.virtualHost.routes[0].routeAction.dynamicForwardProxy: only one of hostRewrite, autoHostRewriteHeader may be set, found both (oneof `host_rewrite_specifier`)"],
        &[],
    );
}

#[test]
fn what_glooss_proto_rules_refuse_rejects_the_gateway_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "
dynamicForwardProxy:
  dnsCacheConfig:
    dnsRefreshRate: 0.0005s
    hostTtl: 0s
    maxHosts: 0
    dnsFailureRefreshRate: {maxInterval: 0.001s}
    caresDns: {resolvers: []}
    appleDns: {}
    dnsQueryTimeout: 0s
",
        ),
        &forward_proxy_vs(),
    ]));
    const AT: &str = "spec.httpGateway.options.dynamicForwardProxy.dnsCacheConfig";
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Rejected,
        &[
            &format!("{AT}.dnsRefreshRate: 0.000500s is shorter than 1ms (the least Gloo and Envoy take)"),
            &format!("{AT}.hostTtl: 0s must be more than 0"),
            &format!("{AT}.dnsQueryTimeout: 0s must be more than 0"),
            &format!("{AT}.maxHosts: must be more than 0"),
            &format!("{AT}.dnsFailureRefreshRate.baseInterval: required"),
            &format!("{AT}.dnsFailureRefreshRate.maxInterval: 0.001s must be more than 1ms"),
            &format!("{AT}: only one of caresDns, appleDns may be set, found both (oneof `DnsCacheType`)"),
        ],
        &[&format!("{AT}.appleDns: only Envoy builds for Apple platforms have Apple's DNS resolver; any other Envoy refuses this listener and its forward proxy cluster")],
    );
    // Never accepted, it is not served: no proxy at all, so no filter and no cluster.
    assert!(t.proxies.values().all(|p| p.listeners.is_empty()
        && p.clusters
            .keys()
            .all(|c| !c.starts_with(DFP_CLUSTER_PREFIX))));

    // A resolver needs an address and a port; c-ares needs at least one resolver.
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "dynamicForwardProxy:\n  dnsCacheConfig:\n    caresDns:\n      resolvers:\n      - socketAddress: {portValue: 53}\n      - socketAddress: {address: 1.1.1.1, portValue: 70000}\n",
        ),
        &forward_proxy_vs(),
    ]));
    assert_eq!(
        status(&t, Kind::Gateway, &gs("gateway-proxy")).errors,
        [
            format!("{AT}.caresDns.resolvers[0].socketAddress.address: required"),
            format!(
                "{AT}.caresDns.resolvers[1].socketAddress.portValue: 70000 is not a port (0-65535)"
            ),
        ]
    );
}

#[test]
fn a_dynamic_route_on_a_gateway_without_the_option_answers_503_with_a_warning() {
    let t = translate(&docs(&[&up(), &forward_proxy_vs()]));
    let warning = |path: &str| {
        format!("spec.virtualHost.routes[{path}].routeAction.dynamicForwardProxy: Gateway gloo-system.gateway-proxy lacks httpGateway.options.dynamicForwardProxy, so the route has no dynamic forward proxy to send to there and answers 503")
    };
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("test-static"),
        Warning,
        &[],
        &[&warning("0"), &warning("1"), &warning("2")],
    );
    let vhost = vhost_json(&t, "test-static");
    for prefix in ["/header", "/literal", "/own"] {
        assert_eq!(
            route_with_prefix(&vhost, prefix)["route"]["cluster"],
            "gloo-missing-destination"
        );
    }
    assert!(generated_clusters(&t).is_empty());
    assert!(!filter_names(&t).contains(&DYNAMIC_FORWARD_PROXY_FILTER.to_string()));
    // The upstream route is served as ever.
    assert_eq!(
        route_with_prefix(&vhost, "/")["route"]["cluster"],
        "up_gloo-system"
    );
}
