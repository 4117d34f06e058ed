//! An Upstream's `failover` (Gloo's `failover.proto`): its prioritized localities become
//! endpoints at priorities 1, 2, ... of the cluster's load assignment; a failover endpoint with
//! its own `upstreamSslConfig` gets a transport socket match of its own; the policy's
//! overprovisioning factor becomes the assignment's.

mod common;

use common::{assert_no_rejections, proxy, translate, translate_with};
use envoy_types::pb::envoy::config::core::v3::{address, socket_address, transport_socket};
use envoy_types::pb::envoy::config::endpoint::v3::{lb_endpoint, ClusterLoadAssignment};
use envoy_types::pb::google::protobuf::value;
use gloo_core::translate::Translator;

const VS: &str = "
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {name: app, namespace: gloo-system}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{prefix: /}]
      routeAction: {single: {upstream: {name: app, namespace: gloo-system}}}
";

fn upstream(host: &str, failover: &str) -> String {
    format!(
        "---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: app, namespace: gloo-system}}
spec:
  static:
    hosts: [{{addr: {host}, port: 9000}}]
{failover}"
    )
}

const FAILOVER: &str = "  failover:
    policy: {overprovisioningFactor: 200}
    prioritizedLocalities:
    - localityEndpoints:
      - locality: {region: us-east, zone: a}
        loadBalancingWeight: 3
        lbEndpoints:
        - address: 10.0.1.1
          port: 8443
          loadBalancingWeight: 2
          upstreamSslConfig:
            sslFiles: {tlsCert: /certs/a.crt, tlsKey: /certs/a.key, rootCa: /certs/ca.crt}
            sni: cluster-b
        - {address: 10.0.1.2, port: 8080}
    - localityEndpoints:
      - locality: {region: eu-west}
        lbEndpoints:
        - {address: 10.0.2.1, port: 8080}
        - {address: failover.example, port: 8080}
";

/// (priority, address:port, weight, transport socket match name) of every endpoint.
fn endpoints(cla: &ClusterLoadAssignment) -> Vec<(u32, String, u32, Option<String>)> {
    let mut out = Vec::new();
    for locality in &cla.endpoints {
        for lb in &locality.lb_endpoints {
            let Some(lb_endpoint::HostIdentifier::Endpoint(e)) = &lb.host_identifier else {
                panic!("an endpoint without an address: {lb:?}")
            };
            let Some(address::Address::SocketAddress(s)) =
                e.address.as_ref().and_then(|a| a.address.as_ref())
            else {
                panic!("not a socket address: {e:?}")
            };
            let Some(socket_address::PortSpecifier::PortValue(port)) = s.port_specifier else {
                panic!("no port: {s:?}")
            };
            let socket = lb
                .metadata
                .as_ref()
                .and_then(|m| m.filter_metadata.get("envoy.transport_socket_match"))
                .and_then(|m| m.fields.get("name"))
                .and_then(|v| match &v.kind {
                    Some(value::Kind::StringValue(s)) => Some(s.clone()),
                    _ => None,
                });
            out.push((
                locality.priority,
                format!("{}:{port}", s.address),
                lb.load_balancing_weight.as_ref().map_or(0, |w| w.value),
                socket,
            ));
        }
    }
    out
}

#[test]
fn failover_localities_become_priority_levels_with_their_own_tls() {
    let t = translate(&format!("{VS}{}", upstream("10.0.0.1", FAILOVER)));
    assert_no_rejections(&t);
    let p = proxy(&t);
    let cla = p.endpoints["app_gloo-system"].resource();
    assert_eq!(
        endpoints(cla),
        vec![
            (0, "10.0.0.1:9000".into(), 0, None),
            (1, "10.0.1.1:8443".into(), 2, Some("failover-1-0-0".into())),
            (1, "10.0.1.2:8080".into(), 0, None),
            // An EDS assignment carries IP addresses only: the DNS name is left out.
            (2, "10.0.2.1:8080".into(), 0, None),
        ]
    );
    let us_east = &cla.endpoints[1];
    let locality = us_east.locality.as_ref().expect("a locality");
    assert_eq!(
        (locality.region.as_str(), locality.zone.as_str()),
        ("us-east", "a")
    );
    assert_eq!(
        us_east.load_balancing_weight.as_ref().map(|w| w.value),
        Some(3)
    );
    assert_eq!(
        cla.policy
            .as_ref()
            .and_then(|p| p.overprovisioning_factor.as_ref())
            .map(|f| f.value),
        Some(200)
    );

    // The cluster: plain by default, TLS with the endpoint's client certificate for the match.
    let cluster = p.clusters["app_gloo-system"].resource();
    assert!(cluster.transport_socket.is_none());
    assert_eq!(cluster.transport_socket_matches.len(), 1);
    let m = &cluster.transport_socket_matches[0];
    assert_eq!(m.name, "failover-1-0-0");
    let criteria = m.r#match.as_ref().expect("match criteria");
    assert_eq!(
        criteria.fields["name"].kind,
        Some(value::Kind::StringValue("failover-1-0-0".into()))
    );
    let Some(transport_socket::ConfigType::TypedConfig(any)) = m
        .transport_socket
        .as_ref()
        .and_then(|s| s.config_type.as_ref())
    else {
        panic!("the match has no typed transport socket: {m:?}")
    };
    let tls: envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext =
        prost::Message::decode(any.value.as_slice()).expect("an UpstreamTlsContext");
    assert_eq!(tls.sni, "cluster-b");
    let common = tls.common_tls_context.expect("a common TLS context");
    assert_eq!(common.tls_certificates.len(), 1, "the client certificate");
}

#[test]
fn a_dns_upstream_keeps_dns_failover_endpoints_inline() {
    let t = translate(&format!("{VS}{}", upstream("app.example", FAILOVER)));
    assert_no_rejections(&t);
    let p = proxy(&t);
    let cluster = p.clusters["app_gloo-system"].resource();
    let cla = cluster.load_assignment.as_ref().expect("inline endpoints");
    let addresses: Vec<(u32, String)> = endpoints(cla)
        .into_iter()
        .map(|(priority, address, _, _)| (priority, address))
        .collect();
    assert!(
        addresses.contains(&(2, "failover.example:8080".to_string())),
        "{addresses:?}"
    );
    assert_eq!(addresses[0], (0, "app.example:9000".to_string()));
}

#[test]
fn editing_only_the_failover_changes_the_assignment() {
    let mut translator = Translator::new();
    let before = translate_with(
        &mut translator,
        &format!("{VS}{}", upstream("10.0.0.1", "")),
    );
    assert_eq!(
        endpoints(proxy(&before).endpoints["app_gloo-system"].resource()).len(),
        1
    );
    // Same endpoints, a failover added: the cached assignment must not be reused.
    let after = translate_with(
        &mut translator,
        &format!("{VS}{}", upstream("10.0.0.1", FAILOVER)),
    );
    assert_eq!(
        endpoints(proxy(&after).endpoints["app_gloo-system"].resource()).len(),
        4
    );
}
