//! Tracing, as Gloo's tracing plugin writes it: a Gateway's
//! `httpConnectionManagerSettings.tracing` becomes its connection manager's `tracing` (tags,
//! sampling percentages, `verbose`, `spawn_upstream_span` and the Zipkin, Datadog or
//! OpenTelemetry tracer, whose `collectorUpstreamRef` becomes the Upstream's cluster, then
//! served to the proxy though no route uses it), and a route's `options.tracing` becomes the
//! route's `tracing` (sampling) and `decorator` (span name).
//!
//! What Gloo or Envoy refuses rejects the Gateway, naming the field; a collector Upstream that
//! is not there (or is rejected) is a warning, as Gloo's "Upstream not found" is, and the
//! connection manager goes without tracing, as Gloo's does.

mod common;

use common::*;
use gloo_core::model::Kind;
use serde_json::{json, Value};

/// Where a Gateway's connection manager settings are, in messages.
const HCM: &str = "spec.httpGateway.options.httpConnectionManagerSettings";

/// A plain HTTP Gateway `gloo-system.edge` on 8080 whose connection manager settings have
/// `tracing` (a YAML flow map), serving one VirtualService to `up`, with the Upstreams
/// `zipkin` (HTTP/1.1) and `otel` (HTTP/2) beside it and `extra` documents.
fn config(tracing: &str, extra: &str) -> String {
    docs(&[
        &gateway(
            "{name: edge, namespace: gloo-system}",
            &format!(
                "bindAddress: '::'\nbindPort: 8080\nhttpGateway:\n  options:\n    httpConnectionManagerSettings:\n      tracing: {tracing}\n"
            ),
        ),
        &up(),
        &static_upstream("zipkin", 9411),
        &format!("{}  useHttp2: true\n", static_upstream("otel", 4317)),
        &vs(
            "default",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
        extra,
    ])
}

/// The connection manager of the listener on 8080, as JSON.
fn hcm(t: &gloo_core::translate::Translation) -> Value {
    let json = proxy_json(t);
    json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8080"))
        .unwrap_or_else(|| panic!("the listener on 8080 in {json:#}"))["filterChains"][0]["filters"]
        [0]["typedConfig"]
        .clone()
}

/// The names of the clusters served to the default proxy.
fn clusters(t: &gloo_core::translate::Translation) -> Vec<String> {
    proxy(t).clusters.keys().cloned().collect()
}

fn gateway_status(t: &gloo_core::translate::Translation) -> &gloo_core::status::ResourceStatus {
    status(t, Kind::Gateway, &gs("edge"))
}

/// Every kind of tag, in Gloo's order (request headers, environment variables, literals,
/// metadata: the request's or the endpoint's, the key split at the delimiter), `verbose`, the
/// percentages as Envoy `Percent`s (the unset one 100) and `spawnUpstreamSpan`; a Zipkin
/// tracer whose `collectorUpstreamRef` is the Upstream's cluster, which is served though no
/// route uses it. Nothing is warned about any more.
#[test]
fn listener_tracing_becomes_the_connection_managers_tracing() {
    let t = translate(&config(
        "
        verbose: true
        requestHeadersForTags: [x-user, origin]
        environmentVariablesForTags:
        - {tag: k8s.pod.name, name: POD_NAME}
        - {tag: k8s.pod.ip, name: POD_IP, defaultValue: NO_POD_IP}
        literalsForTags: [{tag: team, value: payments}]
        metadataForTags:
        - {tag: issuer, value: {namespace: envoy.filters.http.jwt_authn, key: principal.iss}}
        - tag: zone
          kind: ENDPOINT
          value: {namespace: topology, key: 'region:zone', nestedFieldDelimiter: ':'}
          defaultValue: unknown
        tracePercentages: {clientSamplePercentage: 10, randomSamplePercentage: 12.5}
        spawnUpstreamSpan: true
        zipkinConfig:
          collectorUpstreamRef: {name: zipkin, namespace: gloo-system}
          collectorEndpoint: /api/v2/spans
          collectorEndpointVersion: HTTP_PROTO
          traceId128bit: true
          sharedSpanContext: false",
        "",
    ));
    assert_no_rejections(&t);
    assert_eq!(
        hcm(&t)["tracing"],
        json!({
            "clientSampling": {"value": 10.0},
            "randomSampling": {"value": 12.5},
            "overallSampling": {"value": 100.0},
            "verbose": true,
            "customTags": [
                {"tag": "x-user", "requestHeader": {"name": "x-user"}},
                {"tag": "origin", "requestHeader": {"name": "origin"}},
                {"tag": "k8s.pod.name", "environment": {"name": "POD_NAME"}},
                {"tag": "k8s.pod.ip", "environment": {"name": "POD_IP", "defaultValue": "NO_POD_IP"}},
                {"tag": "team", "literal": {"value": "payments"}},
                {"tag": "issuer", "metadata": {
                    "kind": {"request": {}},
                    "metadataKey": {"key": "envoy.filters.http.jwt_authn", "path": [{"key": "principal"}, {"key": "iss"}]},
                }},
                {"tag": "zone", "metadata": {
                    "kind": {"host": {}},
                    "metadataKey": {"key": "topology", "path": [{"key": "region"}, {"key": "zone"}]},
                    "defaultValue": "unknown",
                }},
            ],
            "provider": {
                "name": "envoy.tracers.zipkin",
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                    "collectorCluster": "zipkin_gloo-system",
                    "collectorEndpoint": "/api/v2/spans",
                    "traceId128bit": true,
                    "sharedSpanContext": false,
                    "collectorEndpointVersion": "HTTP_PROTO",
                },
            },
            "spawnUpstreamSpan": true,
        })
    );
    // The collector's cluster is served; the unused OpenTelemetry Upstream's is not.
    assert_eq!(clusters(&t), ["up_gloo-system", "zipkin_gloo-system"]);
    assert_status(&t, Kind::Gateway, &gs("edge"), Accepted, &[], &[]);
}

/// Empty settings still write Gloo's tracing: every percentage 100, `spawn_upstream_span`
/// false, no tracer (Envoy's bootstrap tracer, if any); a Zipkin endpoint version left unset
/// (or the deprecated v1) is sent as `HTTP_JSON`, as Gloo converts it.
#[test]
fn empty_settings_take_gloos_defaults() {
    let t = translate(&config("{}", ""));
    assert_no_rejections(&t);
    assert_eq!(
        hcm(&t)["tracing"],
        json!({
            "clientSampling": {"value": 100.0},
            "randomSampling": {"value": 100.0},
            "overallSampling": {"value": 100.0},
            "spawnUpstreamSpan": false,
        })
    );
    for version in [
        "",
        ", collectorEndpointVersion: DEPRECATED_AND_UNAVAILABLE_DO_NOT_USE",
    ] {
        let t = translate(&config(
            &format!("{{zipkinConfig: {{clusterName: zipkin_gloo-system, collectorEndpoint: /api/v2/spans{version}}}}}"),
            "",
        ));
        assert_no_rejections(&t);
        assert_eq!(
            hcm(&t)["tracing"]["provider"]["typedConfig"],
            json!({
                "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                "collectorCluster": "zipkin_gloo-system",
                "collectorEndpoint": "/api/v2/spans",
                "collectorEndpointVersion": "HTTP_JSON",
            }),
            "{version}"
        );
        // A `clusterName` that is an Upstream's cluster gets that cluster served.
        assert!(clusters(&t).contains(&"zipkin_gloo-system".to_string()));
        assert_status(&t, Kind::Gateway, &gs("edge"), Accepted, &[], &[]);
    }
}

/// The Datadog tracer, as Gloo's `ToEnvoyDatadogConfiguration` writes it: remote configuration
/// on (an empty `remoteConfig`) unless set, with its polling interval when set, and off (no
/// `remoteConfig`) when `disabled`.
#[test]
fn datadog_tracer() {
    let datadog = |remote: &str| {
        let t = translate(&config(
            &format!("{{datadogConfig: {{collectorUpstreamRef: {{name: zipkin, namespace: gloo-system}}, serviceName: edge, collectorHostname: agent.example{remote}}}}}"),
            "",
        ));
        assert_no_rejections(&t);
        assert!(clusters(&t).contains(&"zipkin_gloo-system".to_string()));
        let provider = hcm(&t)["tracing"]["provider"].clone();
        assert_eq!(provider["name"], "envoy.tracers.datadog");
        provider["typedConfig"].clone()
    };
    let base = json!({
        "@type": "type.googleapis.com/envoy.config.trace.v3.DatadogConfig",
        "collectorCluster": "zipkin_gloo-system",
        "serviceName": "edge",
        "collectorHostname": "agent.example",
    });
    let with = |remote: Value| {
        let mut config = base.clone();
        if !remote.is_null() {
            config["remoteConfig"] = remote;
        }
        config
    };
    assert_eq!(datadog(""), with(json!({})));
    assert_eq!(datadog(", remoteConfig: {}"), with(json!({})));
    assert_eq!(
        datadog(", remoteConfig: {pollingInterval: 30s}"),
        with(json!({"pollingInterval": "30s"}))
    );
    assert_eq!(
        datadog(", remoteConfig: {pollingInterval: 30s, disabled: false}"),
        with(json!({"pollingInterval": "30s"}))
    );
    assert_eq!(
        datadog(", remoteConfig: {pollingInterval: 30s, disabled: true}"),
        with(Value::Null)
    );
}

/// The OpenTelemetry tracer exports over Envoy's gRPC client to the collector's cluster, with
/// the authority asked for; its service name is the Gateway's name unless set (Gloo's
/// `GetGatewayNameFromParent`), and its span cache size is passed on when set. A collector
/// Upstream that is not HTTP/2 is served, with a warning: Envoy's gRPC client needs HTTP/2.
#[test]
fn open_telemetry_tracer() {
    let t = translate(&config(
        "{openTelemetryConfig: {collectorUpstreamRef: {name: otel, namespace: gloo-system}}}",
        "",
    ));
    assert_status(&t, Kind::Gateway, &gs("edge"), Accepted, &[], &[]);
    assert_eq!(
        hcm(&t)["tracing"]["provider"],
        json!({
            "name": "envoy.tracers.opentelemetry",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "grpcService": {"envoyGrpc": {"clusterName": "otel_gloo-system"}},
                "serviceName": "edge",
            },
        })
    );
    assert!(clusters(&t).contains(&"otel_gloo-system".to_string()));

    let t = translate(&config(
        "{openTelemetryConfig: {collectorUpstreamRef: {name: otel, namespace: gloo-system}, serviceName: checkout, grpcService: {authority: otel.example}, maxCacheSize: 4096}}",
        "",
    ));
    assert_no_rejections(&t);
    assert_eq!(
        hcm(&t)["tracing"]["provider"]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
            "grpcService": {"envoyGrpc": {"clusterName": "otel_gloo-system", "authority": "otel.example"}},
            "serviceName": "checkout",
            "maxCacheSize": 4096,
        })
    );

    let t = translate(&config(
        "{openTelemetryConfig: {collectorUpstreamRef: {name: zipkin, namespace: gloo-system}}}",
        "",
    ));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("edge"),
        Warning,
        &[],
        &[&format!(
            "{HCM}.tracing.openTelemetryConfig.collectorUpstreamRef: Upstream gloo-system.zipkin does not set useHttp2, and Envoy exports spans to it over gRPC, which needs HTTP/2"
        )],
    );
    assert_eq!(
        hcm(&t)["tracing"]["provider"]["typedConfig"]["grpcService"]["envoyGrpc"]["clusterName"],
        "zipkin_gloo-system"
    );
}

/// A `collectorUpstreamRef` to an Upstream that is not there, that names no namespace (Gloo
/// looks it up in the namespace "") or that is rejected (it gets no cluster) is a warning, as
/// Gloo's "Upstream not found" is, and the connection manager goes without tracing, as
/// Gloo's does (its tracing plugin stops before writing any); the Gateway is served. A
/// `clusterName` that is no Upstream's is passed on, with a warning that Envoy's bootstrap
/// must define it.
#[test]
fn a_collector_upstream_without_a_cluster_is_a_warning_and_no_tracing() {
    let rejected_otel = "apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {name: broken, namespace: gloo-system}
spec:
  useHttp2: true
  initialStreamWindowSize: 1
  static: {hosts: [{addr: 10.0.0.2, port: 4317}]}
";
    for (reference, why) in [
        (
            "{name: zipkin, namespace: default}",
            "Upstream default.zipkin not found",
        ),
        (
            "{name: zipkin}",
            "Upstream \"zipkin\" needs its namespace (Gloo looks a reference without one up in the namespace \"\")",
        ),
        (
            "{name: broken, namespace: gloo-system}",
            "Upstream gloo-system.broken is rejected, so Envoy has no cluster to send spans to",
        ),
    ] {
        let t = translate(&config(
            &format!("{{verbose: true, openTelemetryConfig: {{collectorUpstreamRef: {reference}}}}}"),
            rejected_otel,
        ));
        assert_status(
            &t,
            Kind::Gateway,
            &gs("edge"),
            Warning,
            &[],
            &[&format!(
                "{HCM}.tracing.openTelemetryConfig.collectorUpstreamRef: {why}; the gateway is served without tracing, as Gloo serves it"
            )],
        );
        assert_eq!(hcm(&t)["tracing"], Value::Null, "{reference}");
        assert_eq!(clusters(&t), ["up_gloo-system"], "{reference}");
    }

    for (provider, consequence) in [
        (
            "zipkinConfig: {clusterName: zipkin, collectorEndpoint: /api/v2/spans}",
            "Envoy refuses the listener",
        ),
        (
            "datadogConfig: {clusterName: zipkin, serviceName: edge}",
            "Envoy refuses the listener",
        ),
        (
            "openTelemetryConfig: {clusterName: zipkin}",
            "Envoy cannot export the spans",
        ),
    ] {
        let t = translate(&config(&format!("{{{provider}}}"), ""));
        let field = provider.split(':').next().unwrap_or_default();
        assert_status(
            &t,
            Kind::Gateway,
            &gs("edge"),
            Warning,
            &[],
            &[&format!(
                "{HCM}.tracing.{field}.clusterName: no Upstream has the cluster \"zipkin\" (an Upstream's cluster is `<name>_<namespace>`); unless Envoy's bootstrap defines it, {consequence}"
            )],
        );
        assert_eq!(
            hcm(&t)["tracing"]["provider"]["typedConfig"]["collectorCluster"]
                .as_str()
                .or(
                    hcm(&t)["tracing"]["provider"]["typedConfig"]["grpcService"]["envoyGrpc"]
                        ["clusterName"]
                        .as_str()
                ),
            Some("zipkin"),
            "{provider}"
        );
    }
}

/// What Gloo refuses (OpenCensus, a Datadog or OpenTelemetry tracer without a collector) and
/// what Envoy would refuse (a Zipkin tracer without a collector or endpoint, a Datadog tracer
/// without a service name, an empty cluster name, percentages outside 0 to 100, empty tags and
/// metadata keys, two members of a oneof) rejects the Gateway, each naming its field; the
/// Gateway, never accepted, is not served.
#[test]
fn settings_gloo_or_envoy_would_refuse_reject_the_gateway() {
    let errors = |tracing: &str| {
        let t = translate(&config(tracing, ""));
        let s = gateway_status(&t);
        assert_eq!(s.state, Rejected, "{tracing}: {}", t.reports.to_text());
        // Never accepted, so not served: no listener, and so no proxy.
        assert!(!t.proxies.contains_key("gateway-proxy"), "{tracing}");
        s.errors.clone()
    };
    let at = format!("{HCM}.tracing");
    assert_eq!(
        errors("{openCensusConfig: {}}"),
        [format!("{at}.openCensusConfig: unsupported: Gloo's tracing plugin refuses it (\"Unsupported Tracing.ProviderConfiguration\") and Envoy 1.40 has no OpenCensus tracer; use openTelemetryConfig")]
    );
    assert_eq!(
        errors("{zipkinConfig: {}}"),
        [
            format!("{at}.zipkinConfig: no collector: set one of collectorUpstreamRef, clusterName"),
            format!("{at}.zipkinConfig.collectorEndpoint: required (the collectors' API path, e.g. /api/v2/spans)"),
        ]
    );
    assert_eq!(
        errors("{datadogConfig: {clusterName: ''}}"),
        [
            format!("{at}.datadogConfig.clusterName: must name a cluster"),
            format!("{at}.datadogConfig.serviceName: required (the service name of the spans)"),
        ]
    );
    assert_eq!(
        errors("{openTelemetryConfig: {clusterName: a, collectorUpstreamRef: {name: otel, namespace: gloo-system}}}"),
        [format!("{at}.openTelemetryConfig: only one of collectorUpstreamRef, clusterName may be set, found both (oneof `collector_cluster`)")]
    );
    assert_eq!(
        errors("{openTelemetryConfig: {clusterName: a}, zipkinConfig: {clusterName: b, collectorEndpoint: /x}}"),
        [format!("{at}: only one of zipkinConfig, openTelemetryConfig may be set, found both (oneof `provider_config`)")]
    );
    assert_eq!(
        errors("{tracePercentages: {clientSamplePercentage: -1, overallSamplePercentage: 100.5}}"),
        [
            format!("{at}.tracePercentages.clientSamplePercentage: -1 is not between 0 and 100"),
            format!(
                "{at}.tracePercentages.overallSamplePercentage: 100.5 is not between 0 and 100"
            ),
        ]
    );
    assert_eq!(
        errors(
            "{requestHeadersForTags: ['', \"x\\ny\"], environmentVariablesForTags: [{}], literalsForTags: [{tag: a}], metadataForTags: [{value: {key: 'a..b'}}]}"
        ),
        [
            format!("{at}.requestHeadersForTags[0]: must name a header"),
            format!("{at}.requestHeadersForTags[1]: \"x\\ny\" is not a header name (NUL, CR or LF)"),
            format!("{at}.environmentVariablesForTags[0].tag: required (the tag's name)"),
            format!("{at}.environmentVariablesForTags[0].name: required (the environment variable holding the value)"),
            format!("{at}.literalsForTags[0].value: required (Envoy refuses an empty literal)"),
            format!("{at}.metadataForTags[0].tag: required (the tag's name)"),
            format!("{at}.metadataForTags[0].value.namespace: required (the metadata namespace, e.g. envoy.filters.http.jwt_authn)"),
            format!("{at}.metadataForTags[0].value.key: \"a..b\" has an empty key between its delimiters (or none at all), which Envoy refuses"),
        ]
    );
}

/// A hybrid gateway's HTTP chains each get their own tracing (the service name of an
/// OpenTelemetry tracer is still the Gateway's), the collector's cluster is served, and a
/// chain's bad tracing names the chain.
#[test]
fn hybrid_gateway_chains_trace_on_their_own() {
    let hybrid = |tracing: &str| {
        docs(&[
            &gateway(
                "{name: hybrid, namespace: gloo-system}",
                &format!(
                    "bindAddress: '::'
bindPort: 8090
hybridGateway:
  matchedGateways:
  - matcher:
      sourcePrefixRanges: [{{addressPrefix: 10.0.0.0, prefixLen: 8}}]
    httpGateway:
      options:
        httpConnectionManagerSettings:
          tracing: {tracing}
  - matcher: {{}}
    httpGateway: {{}}
"
                ),
            ),
            &format!("{}  useHttp2: true\n", static_upstream("otel", 4317)),
        ])
    };
    let t = translate(&hybrid(
        "{openTelemetryConfig: {collectorUpstreamRef: {name: otel, namespace: gloo-system}}}",
    ));
    assert_no_rejections(&t);
    let json = proxy_json(&t);
    let chains = json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8090"))
        .expect("the hybrid listener")["filterChains"]
        .clone();
    let tracing = |i: usize| chains[i]["filters"][0]["typedConfig"]["tracing"].clone();
    assert_eq!(
        tracing(0)["provider"]["typedConfig"]["serviceName"],
        "hybrid",
        "{chains:#}"
    );
    assert_eq!(tracing(1), Value::Null);
    assert!(clusters(&t).contains(&"otel_gloo-system".to_string()));

    let t = translate(&hybrid("{datadogConfig: {clusterName: dd}}"));
    let s = status(&t, Kind::Gateway, &gs("hybrid"));
    assert_eq!(
        s.errors,
        ["spec.hybridGateway.matchedGateways[0].httpGateway.options.httpConnectionManagerSettings.tracing.datadogConfig.serviceName: required (the service name of the spans)"]
    );
}

// ----- routes -------------------------------------------------------------------------------

/// A route's `options.tracing` becomes the route's `tracing`, its percentages per-million
/// fractions converted as Gloo's `ToEnvoyPercentage` converts them (100 % unless set), and a
/// `routeDescriptor` its decorator, with `propagate` as given; without a descriptor there is no
/// decorator (`propagate` alone is dropped, as in Gloo). Routes without tracing options get
/// neither, and direct responses trace like any route, as in Gloo.
#[test]
fn route_tracing_becomes_the_routes_decorator_and_tracing() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "domains: ['*']
routes:
- matchers: [{prefix: /checkout}]
  options:
    tracing:
      routeDescriptor: checkout
      propagate: false
      tracePercentages: {clientSamplePercentage: 12.5, randomSamplePercentage: 0.1, overallSamplePercentage: 0}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
- matchers: [{prefix: /cart}]
  options: {tracing: {routeDescriptor: cart}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
- matchers: [{prefix: /quiet}]
  options: {tracing: {propagate: true}}
  directResponseAction: {status: 204}
- matchers: [{prefix: /}]
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_json(&t, "default")["routes"].clone();
    let route = |i: usize| {
        let r = &routes[i];
        (r["decorator"].clone(), r["tracing"].clone())
    };
    let all = json!({"numerator": 1_000_000, "denominator": "MILLION"});
    assert_eq!(
        route(0),
        (
            json!({"operation": "checkout", "propagate": false}),
            json!({
                "clientSampling": {"numerator": 125_000, "denominator": "MILLION"},
                "randomSampling": {"numerator": 1_000, "denominator": "MILLION"},
                "overallSampling": {"denominator": "MILLION"},
            })
        )
    );
    assert_eq!(
        route(1),
        (
            json!({"operation": "cart"}),
            json!({"clientSampling": all, "randomSampling": all, "overallSampling": all})
        )
    );
    assert_eq!(
        route(2),
        (
            Value::Null,
            json!({"clientSampling": all, "randomSampling": all, "overallSampling": all})
        )
    );
    assert_eq!(route(3), (Value::Null, Value::Null));
}

/// A delegated route inherits its parent's tracing unless it sets its own (Gloo's shallow
/// merge), and a percentage outside 0 to 100 rejects the resource that sets it, naming it.
#[test]
fn route_tracing_is_inherited_and_checked() {
    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "domains: ['*']
routes:
- matchers: [{prefix: /api}]
  options: {tracing: {routeDescriptor: api}}
  delegateAction: {ref: {name: api, namespace: gloo-system}}",
        ),
        &rt(
            "{name: api, namespace: gloo-system}",
            "routes:
- matchers: [{prefix: /api/orders}]
  options: {tracing: {routeDescriptor: orders}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
- matchers: [{prefix: /api}]
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_json(&t, "default")["routes"].clone();
    assert_eq!(routes[0]["decorator"]["operation"], "orders");
    assert_eq!(routes[1]["decorator"]["operation"], "api");

    let t = translate(&docs(&[
        &up(),
        &vs(
            "default",
            "domains: ['*']
routes:
- matchers: [{prefix: /}]
  options: {tracing: {tracePercentages: {randomSamplePercentage: 101}}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("default"),
        Rejected,
        &["spec.virtualHost.routes[0].options.tracing.tracePercentages.randomSamplePercentage: 101 is not between 0 and 100"],
        &[],
    );
}
