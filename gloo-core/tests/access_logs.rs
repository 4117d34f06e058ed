//! A Gateway's `options.accessLoggingService` becomes Envoy access logs on every HTTP
//! connection manager and TCP proxy of its listener, as Gloo's `als` plugin writes them: file
//! sinks (Envoy's default format, a text format, a JSON format, with Gloo's two formatter
//! extensions), gRPC access log services, and filters of the same shape as Envoy's. What Envoy
//! (or Gloo) would refuse rejects the Gateway, naming the field; OpenTelemetry sinks and
//! clusters gloo does not know are warnings.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::Translator;
use serde_json::{json, Value};

const FILE: &str = "envoy.access_loggers.file";
const GRPC: &str = "envoy.access_loggers.http_grpc";

/// A Gateway `gloo-system.gateway-proxy` of `spec` (YAML block) whose
/// `options.accessLoggingService` is `service` (YAML block).
fn gateway_with(spec: &str, service: &str) -> String {
    gateway(
        "{name: gateway-proxy, namespace: gloo-system}",
        &format!(
            "{}options:\n  accessLoggingService:\n{}",
            reindent(spec, 0),
            reindent(service, 4)
        ),
    )
}

/// An HTTP gateway on 8080 with `service`, the upstream `up` and a virtual service routing to it.
fn http(service: &str) -> String {
    docs(&[
        &up(),
        &gateway_with("bindAddress: '::'\nbindPort: 8080\nhttpGateway: {}\n", service),
        &vs(
            "default",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
    ])
}

/// The listener named `name`, as JSON.
fn listener(t: &gloo_core::translate::Translation, name: &str) -> Value {
    proxy_json(t)["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no listener {name}:\n{}", t.reports.to_text()))
}

/// The `accessLog` of the first network filter of each filter chain of listener `name`, with
/// the filter's type (its last name segment).
fn chain_logs(t: &gloo_core::translate::Translation, name: &str) -> Vec<(String, Value)> {
    listener(t, name)["filterChains"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|chain| {
            let config = &chain["filters"][0]["typedConfig"];
            let kind = config["@type"]
                .as_str()
                .and_then(|t| t.rsplit('.').next())
                .unwrap_or_default()
                .to_string();
            (kind, config["accessLog"].clone())
        })
        .collect()
}

/// The access logs of the HTTP connection manager on 8080.
fn hcm_logs(t: &gloo_core::translate::Translation) -> Value {
    let chains = chain_logs(t, "listener-::-8080");
    assert_eq!(chains.len(), 1, "{chains:?}");
    assert_eq!(chains[0].0, "HttpConnectionManager");
    chains[0].1.clone()
}

/// The two formatter extensions Gloo adds to every format it sets.
fn formatters() -> Value {
    json!([
        {
            "name": "envoy.formatter.req_without_query",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"},
        },
        {
            "name": "envoy.formatter.metadata",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.formatter.metadata.v3.Metadata"},
        },
    ])
}

fn file_log(config: Value) -> Value {
    let mut typed = json!({"@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"});
    if let (Some(typed), Some(config)) = (typed.as_object_mut(), config.as_object()) {
        typed.extend(config.clone());
    }
    json!({"name": FILE, "typedConfig": typed})
}

#[test]
fn file_sink_with_a_string_format_writes_it_inline_with_gloos_formatters() {
    let t = translate(&http(
        "accessLog:\n- fileSink:\n    path: /dev/stdout\n    stringFormat: \"[%START_TIME%] %REQ_WITHOUT_QUERY(:PATH)% %METADATA(ROUTE:envoy.lb)%\\n\"\n",
    ));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(
        hcm_logs(&t),
        json!([file_log(json!({
            "path": "/dev/stdout",
            "logFormat": {
                "textFormatSource": {"inlineString": "[%START_TIME%] %REQ_WITHOUT_QUERY(:PATH)% %METADATA(ROUTE:envoy.lb)%\n"},
                "formatters": formatters(),
            },
        }))])
    );
}

#[test]
fn file_sink_with_a_json_format_keeps_its_nested_objects() {
    let t = translate(&http(
        "accessLog:
- fileSink:
    path: /var/log/envoy.json
    jsonFormat:
      start: '%START_TIME%'
      request:
        method: '%REQ(:METHOD)%'
        upstream: {cluster: '%UPSTREAM_CLUSTER%', attempts: 1}
      sampled: true
",
    ));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(
        hcm_logs(&t),
        json!([file_log(json!({
            "path": "/var/log/envoy.json",
            "logFormat": {
                "jsonFormat": {
                    "start": "%START_TIME%",
                    "request": {
                        "method": "%REQ(:METHOD)%",
                        "upstream": {"cluster": "%UPSTREAM_CLUSTER%", "attempts": 1.0},
                    },
                    "sampled": true,
                },
                "formatters": formatters(),
            },
        }))])
    );
}

/// Without a format (or with an empty `stringFormat`, as Gloo reads it), Envoy's default
/// format is used and no formatter is added.
#[test]
fn file_sink_without_a_format_uses_envoys_default() {
    let t = translate(&http(
        "accessLog:\n- fileSink: {path: /dev/stdout}\n- fileSink: {path: /dev/stderr, stringFormat: ''}\n",
    ));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(
        hcm_logs(&t),
        json!([
            file_log(json!({"path": "/dev/stdout"})),
            file_log(json!({"path": "/dev/stderr"})),
        ])
    );
}

/// A gRPC sink becomes Envoy's HTTP gRPC access log on the named cluster; when that is an
/// Upstream's no route uses, the Upstream still gets its cluster.
#[test]
fn grpc_sink_becomes_an_http_grpc_access_log_and_its_upstream_a_cluster() {
    let als = "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: als, namespace: gloo-system}\nspec:\n  useHttp2: true\n  static: {hosts: [{addr: 10.0.0.9, port: 9977}]}\n";
    let yaml = docs(&[
        als,
        &http(
            "accessLog:
- grpcService:
    logName: edge
    staticClusterName: als_gloo-system
    additionalRequestHeadersToLog: [x-request-id, x-user]
    additionalResponseHeadersToLog: [x-upstream]
    additionalResponseTrailersToLog: [grpc-status]
    filterStateObjectsToLog: [envoy.network.upstream_server_name]
",
        ),
    ]);
    let t = translate(&yaml);
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(
        hcm_logs(&t),
        json!([{
            "name": GRPC,
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
                "commonConfig": {
                    "logName": "edge",
                    "grpcService": {"envoyGrpc": {"clusterName": "als_gloo-system"}},
                    "transportApiVersion": "V3",
                    "filterStateObjectsToLog": ["envoy.network.upstream_server_name"],
                },
                "additionalRequestHeadersToLog": ["x-request-id", "x-user"],
                "additionalResponseHeadersToLog": ["x-upstream"],
                "additionalResponseTrailersToLog": ["grpc-status"],
            },
        }])
    );
    assert!(
        proxy(&t).clusters.contains_key("als_gloo-system"),
        "{:?}",
        proxy(&t).clusters.keys().collect::<Vec<_>>()
    );
}

/// Every filter kind, nested in `orFilter` and `andFilter`, becomes Envoy's filter of the same
/// shape (header conditions written as Envoy's current `string_match`).
#[test]
fn every_filter_kind_is_translated() {
    let t = translate(&http(
        "accessLog:
- fileSink: {path: /dev/stdout}
  filter:
    orFilter:
      filters:
      - statusCodeFilter: {comparison: {op: GE, value: {defaultValue: 500, runtimeKey: al.status}}}
      - durationFilter: {comparison: {value: {defaultValue: 2000, runtimeKey: al.slow}}}
      - andFilter:
          filters:
          - notHealthCheckFilter: {}
          - traceableFilter: {}
          - runtimeFilter:
              runtimeKey: al.sample
              percentSampled: {numerator: 5, denominator: TEN_THOUSAND}
              useIndependentRandomness: true
          - orFilter:
              filters:
              - headerFilter: {header: {name: x-debug, exactMatch: 'on'}}
              - headerFilter: {header: {name: x-trace, safeRegexMatch: {regex: '^(yes|1)$'}}}
              - headerFilter: {header: {name: x-version, rangeMatch: {start: 2, end: 5}, invertMatch: true}}
              - headerFilter: {header: {name: x-canary, presentMatch: true}}
              - headerFilter: {header: {name: x-tenant, prefixMatch: team-}}
              - headerFilter: {header: {name: x-host, suffixMatch: .internal}}
              - headerFilter: {header: {name: x-any}}
      - responseFlagFilter: {flags: [UH, NR, URX]}
      - grpcStatusFilter: {statuses: [CANCELED, DEADLINE_EXCEEDED, UNAVAILABLE], exclude: true}
",
    ));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let header = |matcher: Value| json!({"headerFilter": {"header": matcher}});
    assert_eq!(
        hcm_logs(&t)[0]["filter"],
        json!({"orFilter": {"filters": [
            {"statusCodeFilter": {"comparison": {"op": "GE", "value": {"defaultValue": 500, "runtimeKey": "al.status"}}}},
            {"durationFilter": {"comparison": {"value": {"defaultValue": 2000, "runtimeKey": "al.slow"}}}},
            {"andFilter": {"filters": [
                {"notHealthCheckFilter": {}},
                {"traceableFilter": {}},
                {"runtimeFilter": {
                    "runtimeKey": "al.sample",
                    "percentSampled": {"numerator": 5, "denominator": "TEN_THOUSAND"},
                    "useIndependentRandomness": true,
                }},
                {"orFilter": {"filters": [
                    header(json!({"name": "x-debug", "stringMatch": {"exact": "on"}})),
                    header(json!({"name": "x-trace", "stringMatch": {"safeRegex": {"regex": "^(yes|1)$"}}})),
                    header(json!({"name": "x-version", "rangeMatch": {"start": "2", "end": "5"}, "invertMatch": true})),
                    header(json!({"name": "x-canary", "presentMatch": true})),
                    header(json!({"name": "x-tenant", "stringMatch": {"prefix": "team-"}})),
                    header(json!({"name": "x-host", "stringMatch": {"suffix": ".internal"}})),
                    header(json!({"name": "x-any"})),
                ]}},
            ]}},
            {"responseFlagFilter": {"flags": ["UH", "NR", "URX"]}},
            {"grpcStatusFilter": {"statuses": ["CANCELED", "DEADLINE_EXCEEDED", "UNAVAILABLE"], "exclude": true}},
        ]}})
    );
}

/// An SSL gateway's access logs are on the connection manager of each certificate's chain.
#[test]
fn ssl_gateway_logs_on_every_filter_chain() {
    let ssl_vs = |name: &str, domain: &str| {
        vs(
            name,
            &format!("domains: ['{domain}']\nroutes:\n- matchers: [{{prefix: /}}]\n  routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}"),
        )
        .replace(
            "spec:\n",
            &format!("spec:\n  sslConfig: {{sslFiles: {{tlsCert: /certs/{name}.crt, tlsKey: /certs/{name}.key}}}}\n"),
        )
    };
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'\nbindPort: 8443\nssl: true\nhttpGateway: {}\n",
            "accessLog:\n- fileSink: {path: /dev/stdout}\n",
        ),
        &ssl_vs("a", "a.example.com"),
        &ssl_vs("b", "b.example.com"),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let expected = json!([file_log(json!({"path": "/dev/stdout"}))]);
    assert_eq!(
        chain_logs(&t, "listener-::-8443"),
        [
            ("HttpConnectionManager".to_string(), expected.clone()),
            ("HttpConnectionManager".to_string(), expected),
        ]
    );
}

/// A TCP gateway's access logs are on the TCP proxy of each of its hosts.
#[test]
fn tcp_gateway_logs_on_every_tcp_proxy() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'
bindPort: 9000
tcpGateway:
  tcpHosts:
  - name: one
    sslConfig: {sniDomains: [one.example.com]}
    destination: {single: {upstream: {name: up, namespace: gloo-system}}}
  - name: two
    destination: {single: {upstream: {name: up, namespace: gloo-system}}}
",
            "accessLog:\n- fileSink: {path: /dev/stdout, stringFormat: \"%DOWNSTREAM_REMOTE_ADDRESS% %BYTES_SENT%\\n\"}\n  filter: {durationFilter: {comparison: {op: GE, value: {defaultValue: 10, runtimeKey: al.tcp}}}}\n",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let chains = chain_logs(&t, "listener-::-9000");
    assert_eq!(chains.len(), 2, "{chains:?}");
    for (kind, logs) in &chains {
        assert_eq!(kind, "TcpProxy");
        assert_eq!(
            logs,
            &json!([{
                "name": FILE,
                "filter": {"durationFilter": {"comparison": {"op": "GE", "value": {"defaultValue": 10, "runtimeKey": "al.tcp"}}}},
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": "/dev/stdout",
                    "logFormat": {
                        "textFormatSource": {"inlineString": "%DOWNSTREAM_REMOTE_ADDRESS% %BYTES_SENT%\n"},
                        "formatters": formatters(),
                    },
                },
            }])
        );
    }
}

/// A hybrid gateway's access logs are on each chain: the connection manager of an HTTP chain,
/// the TCP proxies of a TCP chain.
#[test]
fn hybrid_gateway_logs_on_every_chain() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "bindAddress: '::'
bindPort: 8443
hybridGateway:
  matchedGateways:
  - matcher: {sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]}
    httpGateway: {}
  - matcher: {sourcePrefixRanges: [{addressPrefix: 192.168.0.0, prefixLen: 16}]}
    tcpGateway:
      tcpHosts:
      - name: db
        destination: {single: {upstream: {name: up, namespace: gloo-system}}}
",
            "accessLog:\n- fileSink: {path: /dev/stdout}\n",
        ),
        &vs(
            "default",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let expected = json!([file_log(json!({"path": "/dev/stdout"}))]);
    assert_eq!(
        chain_logs(&t, "listener-::-8443"),
        [
            ("HttpConnectionManager".to_string(), expected.clone()),
            ("TcpProxy".to_string(), expected),
        ]
    );
}

/// Each thing Envoy or Gloo refuses in an access log rejects the Gateway, with a message naming
/// the field.
#[test]
fn invalid_access_logs_reject_the_gateway_naming_the_field() {
    let at = "spec.options.accessLoggingService.accessLog[0]";
    let filter =
        |yaml: &str| format!("accessLog:\n- fileSink: {{path: /dev/stdout}}\n  filter: {yaml}\n");
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            "accessLog:\n- filter: {traceableFilter: {}}\n".into(),
            vec![format!("{at}: no destination: set one of fileSink, grpcService, openTelemetryService")],
        ),
        (
            "accessLog:\n- fileSink: {path: /dev/stdout}\n  grpcService: {logName: a, staticClusterName: b}\n".into(),
            vec![format!("{at}: only one of fileSink, grpcService may be set, found both (oneof `OutputDestination`)")],
        ),
        (
            "accessLog:\n- fileSink: {stringFormat: '%START_TIME%'}\n".into(),
            vec![format!("{at}.fileSink.path: required (the file the log is written to)")],
        ),
        (
            "accessLog:\n- fileSink: {path: /dev/stdout, stringFormat: '%START_TIME%', jsonFormat: {a: b}}\n".into(),
            vec![format!("{at}.fileSink: only one of stringFormat, jsonFormat may be set, found both (oneof `output_format`)")],
        ),
        (
            "accessLog:\n- grpcService: {logName: edge}\n".into(),
            vec![format!("{at}.grpcService.staticClusterName: required (the cluster of the access log service)")],
        ),
        (
            "accessLog:\n- grpcService: {staticClusterName: als}\n".into(),
            vec![format!("{at}.grpcService.logName: required (the service receives it with every batch of entries)")],
        ),
        (
            filter("{andFilter: {filters: [{traceableFilter: {}}]}}"),
            vec![format!("{at}.filter.andFilter.filters: needs at least 2 filters, found 1")],
        ),
        (
            filter("{orFilter: {}}"),
            vec![format!("{at}.filter.orFilter.filters: needs at least 2 filters, found 0")],
        ),
        (
            filter("{statusCodeFilter: {comparison: {op: GE, value: {defaultValue: 400}}}}"),
            vec![format!("{at}.filter.statusCodeFilter.comparison.value.runtimeKey: required (the runtime key that may override defaultValue)")],
        ),
        (
            filter("{durationFilter: {comparison: {op: GE}}}"),
            vec![format!("{at}.filter.durationFilter.comparison.value: required")],
        ),
        (
            filter("{statusCodeFilter: {}}"),
            vec![format!("{at}.filter.statusCodeFilter.comparison: required")],
        ),
        (
            // Nested: the path leads to it.
            filter("{orFilter: {filters: [{traceableFilter: {}}, {runtimeFilter: {percentSampled: {numerator: 1}}}]}}"),
            vec![format!("{at}.filter.orFilter.filters[1].runtimeFilter.runtimeKey: required (the runtime key of the sampled percentage)")],
        ),
        (
            filter("{responseFlagFilter: {flags: [UH, XX]}}"),
            vec![format!("{at}.filter.responseFlagFilter.flags[1]: \"XX\" is not a response flag (one of LH, UH, UT, LR, UR, UF, UC, UO, NR, DI, FI, RL, UAEX, RLSE, DC, URX, SI, IH, DPE, UMSDR, RFCF, NFCF, DT, UPE, NC, OM)")],
        ),
        (
            filter("{headerFilter: {}}"),
            vec![format!("{at}.filter.headerFilter.header: required (the header condition)")],
        ),
        (
            filter("{headerFilter: {header: {exactMatch: x}}}"),
            vec![format!("{at}.filter.headerFilter.header.name: required")],
        ),
        (
            filter("{headerFilter: {header: {name: x-a, safeRegexMatch: {regex: '(unclosed'}}}}"),
            vec![format!("{at}.filter.headerFilter.header.safeRegexMatch.regex: invalid regex \"(unclosed\": error: unclosed group")],
        ),
        (
            filter("{}"),
            vec![format!("{at}.filter: no filter: set one of statusCodeFilter, durationFilter, notHealthCheckFilter, traceableFilter, runtimeFilter, andFilter, orFilter, headerFilter, responseFlagFilter, grpcStatusFilter")],
        ),
        (
            filter("{traceableFilter: {}, notHealthCheckFilter: {}}"),
            vec![format!("{at}.filter: only one of notHealthCheckFilter, traceableFilter may be set, found both (oneof `filter_specifier`)")],
        ),
    ];
    for (service, expected) in cases {
        let t = translate(&http(&service));
        let s = status(&t, Kind::Gateway, &gs("gateway-proxy"));
        assert_eq!(s.state, Rejected, "{service}\n{}", t.reports.to_text());
        assert_eq!(s.errors, expected, "{service}");
    }
}

/// A rejected Gateway keeps its last accepted access logs serving; one never accepted is served
/// without the entries that are wrong (Envoy would refuse the whole listener for them).
#[test]
fn a_rejected_gateway_keeps_its_last_good_access_logs() {
    let mut translator = Translator::new();
    let good = http("accessLog:\n- fileSink: {path: /var/log/good.log}\n");
    let t = translate_with(&mut translator, &good);
    assert_no_rejections(&t);
    let bad =
        http("accessLog:\n- fileSink: {path: /var/log/new.log}\n- grpcService: {logName: edge}\n");
    let t = translate_with(&mut translator, &bad);
    assert_eq!(
        status(&t, Kind::Gateway, &gs("gateway-proxy")).state,
        Rejected
    );
    assert_eq!(
        hcm_logs(&t),
        json!([file_log(json!({"path": "/var/log/good.log"}))])
    );

    let t = translate(&bad);
    assert_eq!(
        status(&t, Kind::Gateway, &gs("gateway-proxy")).state,
        Rejected
    );
    assert_eq!(
        hcm_logs(&t),
        json!([file_log(json!({"path": "/var/log/new.log"}))])
    );
}

/// OpenTelemetry sinks are not translated: a warning names each, and the rest is served.
#[test]
fn open_telemetry_sinks_are_warned_about_and_left_out() {
    let t = translate(&http(
        "accessLog:
- fileSink: {path: /dev/stdout}
- openTelemetryService:
    logName: otel
    collector: {endpoint: 'otel-collector:4317', insecure: true}
",
    ));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Warning,
        &[],
        &["spec.options.accessLoggingService.accessLog[1].openTelemetryService: gloo does not apply this option yet; the gateway is served without it"],
    );
    assert_eq!(
        hcm_logs(&t),
        json!([file_log(json!({"path": "/dev/stdout"}))])
    );
}

/// A gRPC sink's cluster that is no Upstream's may come from Envoy's bootstrap (as Gloo's
/// `access_log_cluster` does): a warning, not a rejection. An Upstream's cluster that is not
/// HTTP/2 is a warning too.
#[test]
fn a_cluster_gloo_does_not_generate_is_a_warning() {
    let at = "spec.options.accessLoggingService.accessLog";
    let t = translate(&http(
        "accessLog:
- grpcService: {logName: edge, staticClusterName: access_log_cluster}
- grpcService: {logName: edge, staticClusterName: up_gloo-system}
",
    ));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gateway-proxy"),
        Warning,
        &[],
        &[
            &format!("{at}[0].grpcService.staticClusterName: no Upstream has the cluster \"access_log_cluster\" (an Upstream's cluster is `<name>_<namespace>`); unless Envoy's bootstrap defines it, Envoy drops these logs"),
            &format!("{at}[1].grpcService.staticClusterName: Upstream gloo-system.up does not set useHttp2, and Envoy sends access logs to it over gRPC, which needs HTTP/2"),
        ],
    );
    // Both are served.
    let logs = hcm_logs(&t);
    let clusters: Vec<&Value> = logs
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| &l["typedConfig"]["commonConfig"]["grpcService"]["envoyGrpc"]["clusterName"])
        .collect();
    assert_eq!(
        clusters,
        [&json!("access_log_cluster"), &json!("up_gloo-system")]
    );
}

/// A JSON format is a protobuf `Struct`, a map that prost encodes in hash order: the listener's
/// version must still depend only on its content.
#[test]
fn a_json_format_gives_the_listener_a_stable_version() {
    let fields: String = (0..12)
        .map(|i| format!("      f{i}: '%START_TIME%'\n"))
        .collect();
    let yaml = http(&format!(
        "accessLog:\n- fileSink:\n    path: /dev/stdout\n    jsonFormat:\n{fields}"
    ));
    let versions: std::collections::BTreeSet<String> = (0..8)
        .map(|_| {
            let t = translate(&yaml);
            proxy(&t).listeners["listener-::-8080"].version.clone()
        })
        .collect();
    assert_eq!(versions.len(), 1, "{versions:?}");
}
