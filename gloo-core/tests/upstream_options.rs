//! An Upstream's DNS, host removal and preconnect options reach its cluster as Gloo's
//! translator copies them, and values Gloo or Envoy refuse are reported on the Upstream.

mod common;

use common::*;
use gloo_core::model::Kind;
use serde_json::json;

fn upstream(name: &str, addr: &str, extra: &str) -> String {
    format!(
        "---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: {name}, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: {addr}, port: 8080}}]}}
{extra}
"
    )
}

fn routes_to(names: &[&str]) -> String {
    let routes: String = names
        .iter()
        .map(|name| format!("      - matchers: [{{prefix: /{name}}}]\n        routeAction: {{single: {{upstream: {{name: {name}, namespace: gloo-system}}}}}}\n"))
        .collect();
    format!(
        "apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
{routes}"
    )
}

const OPTIONS: &str = "  ignoreHealthOnHostRemoval: true
  respectDnsTtl: true
  dnsRefreshRate: 7s
  preconnectPolicy: {perUpstreamPreconnectRatio: 1.5, predictivePreconnectRatio: 2}";

#[test]
fn dns_host_removal_and_preconnect_options_reach_the_cluster() {
    let names = ["dns", "ips", "slow-dns", "bad-preconnect"];
    let yaml = [
        routes_to(&names),
        upstream("dns", "backend.example", OPTIONS),
        upstream("ips", "10.0.0.1", OPTIONS),
        upstream("slow-dns", "backend.example", "  dnsRefreshRate: 0.0005s"),
        upstream(
            "bad-preconnect",
            "10.0.0.1",
            "  preconnectPolicy: {perUpstreamPreconnectRatio: 4}",
        ),
    ]
    .concat();
    let t = translate(&yaml);
    let json = proxy_json(&t);
    let cluster = |name: &str| {
        json["clusters"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["name"] == format!("{name}_gloo-system"))
            })
            .cloned()
            .unwrap_or_else(|| panic!("the cluster of {name}: {}", t.reports.to_text()))
    };
    let dns = cluster("dns");
    assert_eq!(dns["type"], "STRICT_DNS");
    assert_eq!(dns["ignoreHealthOnHostRemoval"], true);
    assert_eq!(dns["respectDnsTtl"], true);
    assert_eq!(dns["dnsRefreshRate"], "7s");
    assert_eq!(
        dns["preconnectPolicy"],
        json!({"perUpstreamPreconnectRatio": 1.5, "predictivePreconnectRatio": 2.0})
    );
    // The DNS settings mean nothing to an EDS cluster and are left out of it.
    let ips = cluster("ips");
    assert_eq!(ips["type"], "EDS");
    assert_eq!(ips["ignoreHealthOnHostRemoval"], true);
    assert!(ips.get("respectDnsTtl").is_none(), "{ips}");
    assert!(ips.get("dnsRefreshRate").is_none(), "{ips}");
    assert_eq!(ips["preconnectPolicy"]["perUpstreamPreconnectRatio"], 1.5);
    for name in ["dns", "ips"] {
        assert_status(
            &t,
            Kind::Upstream,
            &gs(name),
            gloo_core::status::State::Accepted,
            &[],
            &[],
        );
    }
    // A refresh rate Envoy refuses is left out with a warning, as Gloo leaves it out.
    assert!(cluster("slow-dns").get("dnsRefreshRate").is_none());
    assert_eq!(
        status(&t, Kind::Upstream, &gs("slow-dns")).warnings,
        ["spec.dnsRefreshRate: dnsRefreshRate was set below minimum requirement (more than 1ms), ignoring configuration"]
    );
    assert_eq!(
        status(&t, Kind::Upstream, &gs("bad-preconnect")).errors,
        ["spec.preconnectPolicy: invalid preconnect policy: perUpstreamPreconnectRatio must be between 1 and 3 if set, it was: 4"]
    );
}
