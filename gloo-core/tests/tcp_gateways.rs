//! TCP gateways (and hybrid gateways' TCP chains) translated as Gloo's `tcp` and
//! `tls_inspector` plugins write them: one filter chain per host ending in a TCP proxy with
//! stat prefix `tcp`; SNI passthrough for a host with `sniDomains` and no certificate, TLS
//! termination for one with a certificate; `forwardSniClusterName` as the SNI cluster filter
//! before a proxy to cluster `""`; `multi` and `upstreamGroup` as weighted clusters; the TLS
//! inspector whenever a host is matched or routed by SNI; `tcpProxySettings` on every proxy.
//! Hosts Gloo cannot serve get no chain, with Gloo's error or warning on the Gateway.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::Translation;
use serde_json::{json, Value};

const TLS_INSPECTOR: &str = "envoy.filters.listener.tls_inspector";

/// A Gateway `gloo-system.tcp` on port 9000 whose `tcpGateway` is `tcp` (YAML block).
fn tcp_gateway(tcp: &str) -> String {
    gateway(
        "{name: tcp, namespace: gloo-system}",
        &format!(
            "bindAddress: '::'\nbindPort: 9000\ntcpGateway:\n{}",
            reindent(tcp, 2)
        ),
    )
}

/// The listener on `port` as JSON.
fn listener(t: &Translation, port: u32) -> Value {
    let json = proxy_json(t);
    json["listeners"]
        .as_array()
        .and_then(|ls| {
            ls.iter()
                .find(|l| l["name"] == format!("listener-::-{port}"))
                .cloned()
        })
        .unwrap_or_else(|| panic!("no listener on {port} in {json:#}"))
}

fn listener_filter_names(listener: &Value) -> Vec<String> {
    listener["listenerFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect()
}

/// The TCP proxy config of a filter chain (its last filter).
fn tcp_proxy(chain: &Value) -> &Value {
    let filters = chain["filters"].as_array().expect("filters");
    let last = filters.last().expect("a filter");
    assert_eq!(last["name"], "envoy.filters.network.tcp_proxy", "{chain:#}");
    &last["typedConfig"]
}

fn proxy_to(cluster: &str) -> Value {
    json!({
        "name": "envoy.filters.network.tcp_proxy",
        "typedConfig": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "statPrefix": "tcp",
            "cluster": cluster,
        },
    })
}

#[test]
fn hosts_become_passthrough_terminating_and_sni_cluster_chains() {
    let t = translate(&docs(&[
        &up(),
        &static_upstream("up2", 8081),
        &tcp_gateway(
            "
            tcpHosts:
            - name: passthrough
              sslConfig: {sniDomains: [db.example.com]}
              destination: {single: {upstream: {name: up, namespace: gloo-system}}}
            - name: secure
              sslConfig:
                sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}
                sniDomains: [secure.example.com]
                transportSocketConnectTimeout: 5s
              destination:
                multi:
                  destinations:
                  - {destination: {upstream: {name: up}}, weight: 1}
                  - {destination: {upstream: {name: up2}}, weight: 3}
            - name: by-sni
              destination: {forwardSniClusterName: {}}
            ",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("tcp"), Accepted, &[], &[]);
    let listener = listener(&t, 9000);
    // Without the TLS inspector Envoy never learns the SNI the chains match.
    assert_eq!(
        listener["listenerFilters"],
        json!([{
            "name": TLS_INSPECTOR,
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"},
        }])
    );
    assert_eq!(
        listener["filterChains"],
        json!([
            {
                "name": "passthrough",
                "filterChainMatch": {"serverNames": ["db.example.com"]},
                "filters": [proxy_to("up_gloo-system")],
            },
            {
                "name": "secure",
                "filterChainMatch": {"serverNames": ["secure.example.com"]},
                "filters": [{
                    "name": "envoy.filters.network.tcp_proxy",
                    "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "statPrefix": "tcp",
                        "weightedClusters": {"clusters": [
                            {"name": "up_gloo-system", "weight": 1},
                            {"name": "up2_gloo-system", "weight": 3},
                        ]},
                    },
                }],
                "transportSocket": {
                    "name": "envoy.transport_sockets.tls",
                    "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                        "commonTlsContext": {
                            "tlsCertificates": [{
                                "certificateChain": {"filename": "/certs/tls.crt"},
                                "privateKey": {"filename": "/certs/tls.key"},
                            }],
                            "alpnProtocols": ["h2", "http/1.1"],
                        },
                    },
                },
                "transportSocketConnectTimeout": "5s",
            },
            {
                "name": "by-sni",
                "filters": [
                    {
                        "name": "envoy.filters.network.sni_cluster",
                        "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.network.sni_cluster.v3.SniCluster"},
                    },
                    proxy_to(""),
                ],
            },
        ])
    );
    // Both upstreams are clusters of the proxy.
    let clusters = &proxy(&t).clusters;
    assert!(clusters.contains_key("up_gloo-system") && clusters.contains_key("up2_gloo-system"));
}

#[test]
fn a_host_matched_by_nothing_needs_no_tls_inspector() {
    let t = translate(&docs(&[
        &up(),
        &tcp_gateway("tcpHosts:\n- name: plain\n  destination: {single: {upstream: {name: up}}}\n"),
    ]));
    assert_status(&t, Kind::Gateway, &gs("tcp"), Accepted, &[], &[]);
    let listener = listener(&t, 9000);
    assert_eq!(listener_filter_names(&listener), Vec::<String>::new());
    assert_eq!(
        listener["filterChains"],
        json!([{"name": "plain", "filters": [proxy_to("up_gloo-system")]}])
    );
}

/// A host forwarding by SNI needs the TLS inspector even with no `sslConfig` (Gloo's
/// `includeTlsInspectorForTcpListener`).
#[test]
fn forwarding_by_sni_alone_adds_the_tls_inspector() {
    let t = translate(&tcp_gateway(
        "tcpHosts:\n- name: by-sni\n  destination: {forwardSniClusterName: {}}\n",
    ));
    assert_status(&t, Kind::Gateway, &gs("tcp"), Accepted, &[], &[]);
    assert_eq!(listener_filter_names(&listener(&t, 9000)), [TLS_INSPECTOR]);
}

/// `tcpProxySettings` on every host's proxy, as Gloo's `tcpProxyFilters` sets them, written as
/// Envoy reads them without deprecation warnings (the flush interval in `accessLogOptions`, a
/// header's `append: false` as its append action), and no longer an unapplied option.
#[test]
fn tcp_proxy_settings_reach_every_proxy() {
    let t = translate(&docs(&[
        &up(),
        &tcp_gateway(
            "
            options:
              tcpProxySettings:
                maxConnectAttempts: 3
                idleTimeout: 60s
                accessLogFlushInterval: 2s
                tunnelingConfig:
                  hostname: backend.example.com:443
                  headersToAdd:
                  - header: {key: x-tunnel, value: gloo}
                  - header: {key: x-replace, value: 'yes'}
                    append: false
            tcpHosts:
            - name: one
              sslConfig: {sniDomains: [one.example.com]}
              destination: {single: {upstream: {name: up}}}
            - name: two
              destination: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(&t, Kind::Gateway, &gs("tcp"), Accepted, &[], &[]);
    let listener = listener(&t, 9000);
    let chains = listener["filterChains"].as_array().expect("chains");
    assert_eq!(chains.len(), 2);
    for chain in chains {
        assert_eq!(
            tcp_proxy(chain),
            &json!({
                "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                "statPrefix": "tcp",
                "cluster": "up_gloo-system",
                "maxConnectAttempts": 3,
                "idleTimeout": "60s",
                "accessLogOptions": {"accessLogFlushInterval": "2s"},
                "tunnelingConfig": {
                    "hostname": "backend.example.com:443",
                    "headersToAdd": [
                        {"header": {"key": "x-tunnel", "value": "gloo"}},
                        {"header": {"key": "x-replace", "value": "yes"}, "appendAction": "OVERWRITE_IF_EXISTS_OR_ADD"},
                    ],
                },
            })
        );
    }
}

#[test]
fn tcp_proxy_settings_gloo_or_envoy_refuse_reject_the_gateway() {
    let t = translate(&docs(&[
        &up(),
        &tcp_gateway(
            "
            options:
              tcpProxySettings:
                maxConnectAttempts: 0
                accessLogFlushInterval: 0.0005s
                tunnelingConfig: {hostname: ''}
            tcpHosts:
            - name: one
              destination: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("tcp"),
        Rejected,
        &[
            "spec.tcpGateway.options.tcpProxySettings.maxConnectAttempts: must be at least 1",
            "spec.tcpGateway.options.tcpProxySettings.accessLogFlushInterval: access log flush interval must have minimum of 1ms",
            "spec.tcpGateway.options.tcpProxySettings.tunnelingConfig.hostname: a tunnel needs the host name to CONNECT to",
        ],
        &[],
    );
    // As in Gloo, no host is served with settings it refuses.
    assert!(!proxy(&t).listeners.contains_key("listener-::-9000"));
}

#[test]
fn a_misspelt_tcp_proxy_setting_is_refused() {
    let t = translate(&tcp_gateway(
        "options:\n  tcpProxySettings: {maxConnectAttempt: 2}\ntcpHosts: []\n",
    ));
    assert!(t.reports.has_rejections(), "{}", t.reports.to_text());
    assert!(
        t.reports.to_text().contains("maxConnectAttempt"),
        "{}",
        t.reports.to_text()
    );
}

/// Gloo's semantics for hosts it cannot serve: a host without a destination, with no
/// weighted destination, or whose `sslConfig` has neither a certificate nor SNI domains is an
/// error (the Gateway is rejected); a missing Upstream or UpstreamGroup is a warning. Either
/// way the host gets no filter chain; the others are served.
#[test]
fn hosts_that_cannot_be_served_get_no_chain_and_say_why() {
    let t = translate(&docs(&[
        &up(),
        &tcp_gateway(
            "
            tcpHosts:
            - name: served
              destination: {single: {upstream: {name: up}}}
            - name: nowhere
              sslConfig: {sniDomains: [nowhere.example.com]}
            - name: empty
              sslConfig: {sniDomains: [empty.example.com]}
              destination: {multi: {}}
            - name: no-cert
              sslConfig: {oneWayTls: true}
              destination: {single: {upstream: {name: up}}}
            - name: missing
              sslConfig: {sniDomains: [missing.example.com]}
              destination: {single: {upstream: {name: nope}}}
            - name: missing-group
              sslConfig: {sniDomains: [group.example.com]}
              destination: {upstreamGroup: {name: nogroup}}
            - name: bad-secret
              sslConfig: {secretRef: {name: nosecret}, sniDomains: [bad.example.com]}
              destination: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("tcp"),
        Rejected,
        &[
            "spec.tcpGateway.tcpHosts[1].destination: must specify either 'single', 'multi', 'upstreamGroup' or 'forwardSniClusterName'",
            "spec.tcpGateway.tcpHosts[2].destination.multi.destinations: must specify at least one weighted destination",
            "spec.tcpGateway.tcpHosts[3].sslConfig: set one of secretRef, sslFiles, sds to terminate TLS, or sniDomains to pass it through",
            "spec.tcpGateway.tcpHosts[6].sslConfig.secretRef: Secret gloo-system.nosecret not found",
        ],
        &[
            "spec.tcpGateway.tcpHosts[4].destination.single.upstream: Upstream gloo-system.nope not found; the host gets no filter chain until it exists",
            "spec.tcpGateway.tcpHosts[5].destination.upstreamGroup: UpstreamGroup gloo-system.nogroup not found; the host gets no filter chain until it exists",
        ],
    );
    let listener = listener(&t, 9000);
    let names: Vec<&str> = listener["filterChains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["served"]);
    // Hosts with an `sslConfig` still bring the TLS inspector, as in Gloo.
    assert_eq!(listener_filter_names(&listener), [TLS_INSPECTOR]);
}

/// An upstream group's destinations become the proxy's weighted clusters, as Gloo converts
/// them; once the Upstream a host names exists, the warning goes and the host is served.
#[test]
fn upstream_groups_are_weighted_clusters() {
    let group = "apiVersion: gloo.solo.io/v1\nkind: UpstreamGroup\nmetadata: {name: group, namespace: gloo-system}\nspec:\n  destinations:\n  - {destination: {upstream: {name: up}}, weight: 2}\n  - {destination: {upstream: {name: up2}}, weight: 8}\n";
    let t = translate(&docs(&[
        &up(),
        &static_upstream("up2", 8081),
        group,
        &tcp_gateway("tcpHosts:\n- name: grouped\n  destination: {upstreamGroup: {name: group}}\n"),
    ]));
    assert_status(&t, Kind::Gateway, &gs("tcp"), Accepted, &[], &[]);
    let listener = listener(&t, 9000);
    assert_eq!(
        tcp_proxy(&listener["filterChains"][0])["weightedClusters"],
        json!({"clusters": [
            {"name": "up_gloo-system", "weight": 2},
            {"name": "up2_gloo-system", "weight": 8},
        ]})
    );
    assert!(proxy(&t).clusters.contains_key("up2_gloo-system"));
}

/// A rejected UpstreamGroup is not used by TCP hosts either: the host gets no filter chain,
/// as for a missing group, and the Gateway's warning says the group is rejected.
#[test]
fn a_rejected_upstream_group_leaves_its_host_without_a_chain() {
    let group = "apiVersion: gloo.solo.io/v1\nkind: UpstreamGroup\nmetadata: {name: group, namespace: gloo-system}\nspec:\n  destinations:\n  - destination: {upstream: {name: up}}\n    weight: 1\n    options: {headerManipulation: {requestHeadersToRemove: [':path']}}\n";
    let t = translate(&docs(&[
        &up(),
        group,
        &tcp_gateway(
            "
            tcpHosts:
            - name: served
              destination: {single: {upstream: {name: up}}}
            - name: grouped
              sslConfig: {sniDomains: [group.example.com]}
              destination: {upstreamGroup: {name: group}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::UpstreamGroup,
        &gs("group"),
        Rejected,
        &["spec.destinations[0].options.headerManipulation.requestHeadersToRemove[0]: :-prefixed or host headers may not be removed, found \":path\""],
        &[],
    );
    assert_status(
        &t,
        Kind::Gateway,
        &gs("tcp"),
        Warning,
        &[],
        &["spec.tcpGateway.tcpHosts[1].destination.upstreamGroup: UpstreamGroup gloo-system.group is rejected; the host gets no filter chain until it is fixed"],
    );
    let listener = listener(&t, 9000);
    let names: Vec<&str> = listener["filterChains"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["served"]);
}

/// A hybrid gateway's TCP chain as Gloo's `tcpFilterChainTranslator` builds it: the matcher's
/// `sniDomains` match hosts naming none, its client ranges every host; the matcher terminates
/// no TLS (its certificate is ignored, with a warning) while a host's own certificate does.
#[test]
fn hybrid_tcp_chains_take_the_matchers_sni_domains_and_terminate_only_their_own_tls() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: cert, namespace: gloo-system}\ntype: kubernetes.io/tls\nstringData: {tls.crt: CERT, tls.key: KEY}\n";
    let t = translate(&docs(&[
        &up(),
        secret,
        &gateway(
            "{name: hybrid, namespace: gloo-system}",
            "
            bindAddress: '::'
            bindPort: 8443
            hybridGateway:
              matchedGateways:
              - matcher:
                  sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]
                  sslConfig: {secretRef: {name: cert}, sniDomains: [a.example.com, b.example.com]}
                tcpGateway:
                  tcpHosts:
                  - name: lent
                    destination: {single: {upstream: {name: up}}}
                  - name: own
                    sslConfig: {secretRef: {name: cert}, sniDomains: [b.example.com]}
                    destination: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("hybrid"),
        Warning,
        &[],
        &["spec.hybridGateway.matchedGateways[0].matcher.sslConfig: ignored but for its sniDomains, as in Gloo: a TCP chain's matcher terminates no TLS (a host's own sslConfig does)"],
    );
    let listener = listener(&t, 8443);
    assert_eq!(listener_filter_names(&listener), [TLS_INSPECTOR]);
    let chains = listener["filterChains"].as_array().expect("chains");
    assert_eq!(chains.len(), 2);
    let ranges = json!([{"addressPrefix": "10.0.0.0", "prefixLen": 8}]);
    assert_eq!(
        chains[0]["filterChainMatch"],
        json!({"serverNames": ["a.example.com", "b.example.com"], "sourcePrefixRanges": ranges})
    );
    assert!(chains[0]["transportSocket"].is_null(), "{:#}", chains[0]);
    assert_eq!(
        chains[1]["filterChainMatch"],
        json!({"serverNames": ["b.example.com"], "sourcePrefixRanges": ranges})
    );
    assert_eq!(
        chains[1]["transportSocket"]["name"],
        "envoy.transport_sockets.tls"
    );
}

/// Gloo's `validateTcpHosts`: with a matcher naming SNI domains, a host's SNI domain outside
/// them is an error.
#[test]
fn a_hybrid_tcp_host_outside_the_matchers_sni_domains_is_an_error() {
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: hybrid, namespace: gloo-system}",
            "
            bindPort: 8443
            hybridGateway:
              matchedGateways:
              - matcher:
                  sslConfig: {sniDomains: [a.example.com]}
                tcpGateway:
                  tcpHosts:
                  - name: stray
                    sslConfig: {sniDomains: [a.example.com, c.example.com]}
                    destination: {single: {upstream: {name: up}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("hybrid"),
        Rejected,
        &["spec.hybridGateway.matchedGateways[0].tcpGateway: gateway has conflicting sni domains [stray:c.example.com]: each host's sniDomains must be among the matcher's"],
        &[],
    );
}
