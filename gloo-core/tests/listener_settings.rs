//! What an SSL VirtualService's `sslConfig` and a Gateway's `httpConnectionManagerSettings`
//! become beyond the basics. `parameters` (protocol versions, cipher suites, ECDH curves)
//! become the TLS context's `tls_params`, and `verifySubjectAltName` becomes SAN matchers
//! beside the trusted CA, on SSL VirtualServices (client certificates) and Upstreams (the
//! server's certificate); names to verify without a CA to verify against are refused, as Gloo
//! refuses them. The downstream-only TLS options reach the TLS context and filter chain, and
//! the connection manager settings reach Envoy's `HttpConnectionManager` (its early header
//! mutation and HTTP/1 options among them: key format, chunked length, trailers and, from the
//! listener's `headerValidationSettings`, custom methods). An Upstream's HTTP/2 windows, HTTP/1
//! options and common HTTP options reach its cluster's `HttpProtocolOptions`, and its TCP
//! keepalive the cluster's upstream connection options.

mod common;

use common::{assert_no_rejections, proxy_json, translate};
use gloo_core::model::Kind;
use serde_json::{json, Value};

const GATEWAY: &str = "
apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: secure, namespace: gloo-system}
spec:
  bindAddress: '::'
  bindPort: 8443
  ssl: true
  httpGateway: {}
";

fn config(vs_ssl: &str, upstream_ssl: &str) -> String {
    format!(
        "{GATEWAY}---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: backend, namespace: gloo-system}}
spec:
  static:
    hosts: [{{addr: 10.0.0.1, port: 443}}]
  sslConfig:
{upstream_ssl}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: secure, namespace: gloo-system}}
spec:
  sslConfig:
{vs_ssl}
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: backend, namespace: gloo-system}}}}}}
"
    )
}

const VS_SSL: &str =
    "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key, rootCa: /certs/ca.crt}
    verifySubjectAltName: [client.example.com]
    parameters:
      minimumProtocolVersion: TLSv1_3
      cipherSuites: [ECDHE-ECDSA-AES128-GCM-SHA256]
      ecdhCurves: [X25519]";

const UPSTREAM_SSL: &str = "    sslFiles: {rootCa: /certs/ca.crt}
    sni: backend.example.com
    verifySubjectAltName: [spiffe://cluster.local/ns/default/sa/backend]
    parameters: {maximumProtocolVersion: TLSv1_2}";

/// The `commonTlsContext` of the SSL listener's filter chain and of the upstream's cluster.
fn contexts(t: &gloo_core::translate::Translation) -> (Value, Value) {
    let json = proxy_json(t);
    let listener = json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8443"))
        .cloned()
        .expect("the SSL listener");
    let downstream =
        listener["filterChains"][0]["transportSocket"]["typedConfig"]["commonTlsContext"].clone();
    let cluster = json["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "backend_gloo-system"))
        .cloned()
        .expect("the upstream's cluster");
    let upstream = cluster["transportSocket"]["typedConfig"]["commonTlsContext"].clone();
    (downstream, upstream)
}

/// One exact matcher of `name` for each SAN type, as Envoy's untyped matchers checked them all.
fn san_matchers(name: &str) -> Value {
    json!(["DNS", "URI", "EMAIL", "IP_ADDRESS"]
        .iter()
        .map(|t| json!({"sanType": t, "matcher": {"exact": name}}))
        .collect::<Vec<_>>())
}

#[test]
fn parameters_and_subject_alt_names_reach_both_tls_contexts() {
    let t = translate(&config(VS_SSL, UPSTREAM_SSL));
    assert_no_rejections(&t);
    let (downstream, upstream) = contexts(&t);
    assert_eq!(
        downstream["tlsParams"],
        json!({
            "tlsMinimumProtocolVersion": "TLSv1_3",
            "cipherSuites": ["ECDHE-ECDSA-AES128-GCM-SHA256"],
            "ecdhCurves": ["X25519"],
        })
    );
    let validation = &downstream["validationContext"];
    assert_eq!(
        validation["trustedCa"],
        json!({"filename": "/certs/ca.crt"})
    );
    assert_eq!(
        validation["matchTypedSubjectAltNames"],
        san_matchers("client.example.com")
    );
    assert_eq!(
        upstream["tlsParams"],
        json!({"tlsMaximumProtocolVersion": "TLSv1_2"})
    );
    assert_eq!(
        upstream["validationContext"]["matchTypedSubjectAltNames"],
        san_matchers("spiffe://cluster.local/ns/default/sa/backend")
    );

    // Without them, neither context has parameters or matchers.
    let plain_vs =
        "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key, rootCa: /certs/ca.crt}";
    let plain_upstream = "    sslFiles: {rootCa: /certs/ca.crt}";
    let t = translate(&config(plain_vs, plain_upstream));
    assert_no_rejections(&t);
    let (downstream, upstream) = contexts(&t);
    for context in [&downstream, &upstream] {
        assert!(context.get("tlsParams").is_none(), "{context}");
        assert!(
            context["validationContext"]
                .get("matchTypedSubjectAltNames")
                .is_none(),
            "{context}"
        );
    }
}

#[test]
fn names_to_verify_without_a_ca_are_refused() {
    let vs_without_ca = "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}
    verifySubjectAltName: [client.example.com]";
    let upstream_without_ca = "    sni: backend.example.com
    verifySubjectAltName: [backend.example.com]";
    let t = translate(&config(vs_without_ca, upstream_without_ca));
    let errors = |kind: Kind, name: &str| {
        common::status(&t, kind, &common::gs(name))
            .errors
            .join("\n")
    };
    let vs = errors(Kind::VirtualService, "secure");
    assert!(
        vs.contains("spec.sslConfig.verifySubjectAltName: needs a rootCa"),
        "{vs}"
    );
    let upstream = errors(Kind::Upstream, "backend");
    assert!(
        upstream.contains("spec.sslConfig.verifySubjectAltName: needs a rootCa"),
        "{upstream}"
    );
}

/// The downstream-only options: the OCSP staple file and policy, no stateless session
/// resumption, the handshake timeout on the filter chain, and `alpnProtocols: [allow_empty]`
/// for no ALPN at all (Gloo's escape from its default `h2`, `http/1.1`).
#[test]
fn downstream_options_reach_the_tls_context_and_filter_chain() {
    let vs_ssl = "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key, ocspStaple: /certs/tls.ocsp}
    ocspStaplePolicy: STRICT_STAPLING
    disableTlsSessionResumption: true
    transportSocketConnectTimeout: 2.5s
    alpnProtocols: [allow_empty]";
    let t = translate(&config(vs_ssl, "    sslFiles: {rootCa: /certs/ca.crt}"));
    assert_no_rejections(&t);
    let json = proxy_json(&t);
    let chain = &json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8443"))
        .expect("the SSL listener")["filterChains"][0];
    assert_eq!(chain["transportSocketConnectTimeout"], json!("2.500s"));
    let tls = &chain["transportSocket"]["typedConfig"];
    assert_eq!(tls["ocspStaplePolicy"], json!("STRICT_STAPLING"));
    assert_eq!(tls["disableStatelessSessionResumption"], json!(true));
    let common = &tls["commonTlsContext"];
    assert_eq!(
        common["tlsCertificates"][0]["ocspStaple"],
        json!({"filename": "/certs/tls.ocsp"})
    );
    assert!(common.get("alpnProtocols").is_none(), "no ALPN: {common}");

    // By default: Gloo's ALPN, lenient stapling (the proto default, not written), resumption.
    let t = translate(&config(
        "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}",
        "    sslFiles: {rootCa: /certs/ca.crt}",
    ));
    let (common, _) = contexts(&t);
    assert_eq!(common["alpnProtocols"], json!(["h2", "http/1.1"]));
    assert!(common["tlsCertificates"][0].get("ocspStaple").is_none());
}

/// `oneWayTls`, as Gloo's ssl translator reads it: downstream, clients are neither required
/// nor asked for a certificate (the validation context goes); upstream, the CA still checks
/// the server but no client certificate is presented. Settings'
/// `gateway.virtualServiceOptions.oneWayTls` is the default of the VirtualServices' own.
#[test]
fn one_way_tls_drops_client_certificates_on_both_sides() {
    let mutual_vs =
        "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key, rootCa: /certs/ca.crt}";
    let client_cert_upstream =
        "    sslFiles: {tlsCert: /certs/client.crt, tlsKey: /certs/client.key, rootCa: /certs/ca.crt}";
    let tls_of = |t: &gloo_core::translate::Translation| {
        let json = proxy_json(t);
        json["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8443"))
            .expect("the SSL listener")["filterChains"][0]["transportSocket"]["typedConfig"]
            .clone()
    };
    // Mutual TLS: the CA verifies clients, who must present a certificate; the upstream gets
    // the client certificate.
    let t = translate(&config(mutual_vs, client_cert_upstream));
    assert_no_rejections(&t);
    let tls = tls_of(&t);
    assert_eq!(tls["requireClientCertificate"], json!(true));
    assert!(
        tls["commonTlsContext"].get("validationContext").is_some(),
        "{tls}"
    );
    let (_, upstream) = contexts(&t);
    assert_eq!(
        upstream["tlsCertificates"].as_array().map(Vec::len),
        Some(1)
    );

    // oneWayTls on both.
    let t = translate(&config(
        &format!("{mutual_vs}\n    oneWayTls: true"),
        &format!("{client_cert_upstream}\n    oneWayTls: true"),
    ));
    assert_no_rejections(&t);
    let tls = tls_of(&t);
    assert_eq!(tls["requireClientCertificate"], json!(false));
    assert!(
        tls["commonTlsContext"].get("validationContext").is_none(),
        "{tls}"
    );
    let (_, upstream) = contexts(&t);
    assert!(upstream.get("tlsCertificates").is_none(), "{upstream}");
    assert!(
        upstream.get("validationContext").is_some(),
        "the CA still checks the upstream"
    );

    // The Settings' default, and a VirtualService's own value over it.
    let settings = "---
apiVersion: gloo.solo.io/v1
kind: Settings
metadata: {name: default, namespace: gloo-system}
spec:
  gateway:
    virtualServiceOptions: {oneWayTls: true}
";
    let t = translate(&format!(
        "{}{settings}",
        config(mutual_vs, client_cert_upstream)
    ));
    assert_no_rejections(&t);
    assert_eq!(tls_of(&t)["requireClientCertificate"], json!(false));
    let t = translate(&format!(
        "{}{settings}",
        config(
            &format!("{mutual_vs}\n    oneWayTls: false"),
            client_cert_upstream
        )
    ));
    assert_eq!(tls_of(&t)["requireClientCertificate"], json!(true));
}

/// Connection manager settings that reach Envoy's `HttpConnectionManager`: the request head
/// timeout, the host's port stripped before routing, HTTP/1.0 with its default host, and what
/// happens to `x-forwarded-client-cert`.
#[test]
fn connection_manager_settings_reach_the_http_connection_manager() {
    let gateway = GATEWAY.replace(
        "  httpGateway: {}",
        "  httpGateway:
    options:
      httpConnectionManagerSettings:
        requestHeadersTimeout: 3s
        stripAnyHostPort: true
        acceptHttp10: true
        defaultHostForHttp10: legacy.example.com
        forwardClientCertDetails: SANITIZE_SET
        preserveExternalRequestId: true
        appendXForwardedPort: true
        http2ProtocolOptions:
          maxConcurrentStreams: 7
          initialStreamWindowSize: 100000
          initialConnectionWindowSize: 1000000
          overrideStreamErrorOnInvalidHttpMessage: true
        internalAddressConfig:
          unixSockets: true
          cidrRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}, {addressPrefix: '::1', prefixLen: 128}]",
    );
    let vs_ssl = "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}";
    let yaml = config(vs_ssl, "    sslFiles: {rootCa: /certs/ca.crt}").replace(GATEWAY, &gateway);
    let t = translate(&yaml);
    assert_no_rejections(&t);
    let json = proxy_json(&t);
    let hcm = &json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8443"))
        .expect("the SSL listener")["filterChains"][0]["filters"][0]["typedConfig"];
    assert_eq!(hcm["requestHeadersTimeout"], json!("3s"));
    assert_eq!(hcm["stripAnyHostPort"], json!(true));
    assert_eq!(hcm["forwardClientCertDetails"], json!("SANITIZE_SET"));
    assert_eq!(
        hcm["httpProtocolOptions"],
        json!({"acceptHttp10": true, "defaultHostForHttp10": "legacy.example.com"})
    );
    assert_eq!(hcm["preserveExternalRequestId"], json!(true));
    assert_eq!(hcm["appendXForwardedPort"], json!(true));
    assert_eq!(
        hcm["http2ProtocolOptions"],
        json!({"maxConcurrentStreams": 7, "initialStreamWindowSize": 100000,
               "initialConnectionWindowSize": 1000000,
               "overrideStreamErrorOnInvalidHttpMessage": true})
    );
    assert_eq!(
        hcm["internalAddressConfig"],
        json!({"unixSockets": true, "cidrRanges": [
            {"addressPrefix": "10.0.0.0", "prefixLen": 8},
            {"addressPrefix": "::1", "prefixLen": 128},
        ]})
    );
    // Nothing is left unapplied.
    let warnings = common::status(&t, Kind::Gateway, &common::gs("secure"))
        .warnings
        .join("\n");
    assert!(
        !warnings.contains("RequestId") && !warnings.contains("internalAddress"),
        "{warnings}"
    );
}

/// Internal address ranges Envoy would refuse and HTTP/2 settings Gloo would refuse reject the
/// Gateway, naming them.
#[test]
fn settings_envoy_or_gloo_would_refuse_reject_the_gateway() {
    let gateway = GATEWAY.replace(
        "  httpGateway: {}",
        "  httpGateway:
    options:
      httpConnectionManagerSettings:
        internalAddressConfig:
          cidrRanges: [{addressPrefix: 10.0.0.0, prefixLen: 33}, {addressPrefix: intranet, prefixLen: 8}]
        http2ProtocolOptions: {maxConcurrentStreams: 0, initialConnectionWindowSize: 1024}",
    );
    let vs_ssl = "    sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}";
    let yaml = config(vs_ssl, "    sslFiles: {rootCa: /certs/ca.crt}").replace(GATEWAY, &gateway);
    let t = translate(&yaml);
    let errors = common::status(&t, Kind::Gateway, &common::gs("secure"))
        .errors
        .join("\n");
    let at =
        "spec.httpGateway.options.httpConnectionManagerSettings.internalAddressConfig.cidrRanges";
    assert!(
        errors.contains(&format!(
            "{at}[0]: prefixLen 33 is longer than the address (32 bits)"
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "{at}[1]: addressPrefix \"intranet\" is not an IP address"
        )),
        "{errors}"
    );
    let h2 = "spec.httpGateway.options.httpConnectionManagerSettings.http2ProtocolOptions";
    assert!(
        errors.contains(&format!(
            "{h2}.maxConcurrentStreams: 0 is not between 1 and 2147483647"
        )),
        "{errors}"
    );
    assert!(
        errors.contains(&format!(
            "{h2}.initialConnectionWindowSize: 1024 is not between 65535 and 2147483647"
        )),
        "{errors}"
    );
}

/// An HTTP/2 Upstream's `initialStreamWindowSize` and `initialConnectionWindowSize` reach its
/// cluster's HTTP/2 options, as Gloo's protocoloptions plugin writes them; on an HTTP/1.1
/// Upstream they do nothing (a warning says so), and windows Gloo refuses reject it.
#[test]
fn an_http2_upstreams_windows_reach_its_cluster() {
    let upstream = |name: &str, extra: &str| {
        format!(
            "---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: {name}, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 10.0.0.1, port: 8080}}]}}
{extra}"
        )
    };
    let route = |name: &str| {
        format!("      - matchers: [{{prefix: /{name}}}]\n        routeAction: {{single: {{upstream: {{name: {name}, namespace: gloo-system}}}}}}\n")
    };
    let yaml = format!(
        "apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
{}{}{}",
        route("grpc") + &route("plain") + &route("bad"),
        upstream(
            "grpc",
            "  useHttp2: true\n  initialStreamWindowSize: 100000\n  initialConnectionWindowSize: 1000000\n"
        ) + &upstream("plain", "  initialStreamWindowSize: 100000\n"),
        upstream("bad", "  useHttp2: true\n  initialStreamWindowSize: 10\n"),
    );
    let t = translate(&yaml);
    let json = proxy_json(&t);
    let cluster = json["clusters"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "grpc_gloo-system"))
        .expect("the HTTP/2 upstream's cluster");
    assert_eq!(
        cluster["typedExtensionProtocolOptions"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicitHttpConfig"]
            ["http2ProtocolOptions"],
        json!({"initialStreamWindowSize": 100000, "initialConnectionWindowSize": 1000000})
    );
    let plain = common::status(&t, Kind::Upstream, &common::gs("plain"));
    assert!(
        plain
            .warnings
            .iter()
            .any(|w| w.starts_with("spec.initialStreamWindowSize: gloo does not apply")),
        "{plain:?}"
    );
    let bad = common::status(&t, Kind::Upstream, &common::gs("bad"));
    assert_eq!(
        bad.errors,
        ["spec.initialStreamWindowSize: 10 is not between 65535 and 2147483647"]
    );
}

// ----- earlyHeaderManipulation and HTTP/1 key formats ---------------------------------------

/// A plain HTTP Gateway (in `gloo-system`) with `settings` as its
/// `httpConnectionManagerSettings` (indented under it), serving one VirtualService, and
/// `extra` documents.
fn http_gateway(settings: &str, extra: &str) -> String {
    format!(
        "apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {{name: edge, namespace: gloo-system}}
spec:
  bindAddress: '::'
  bindPort: 8080
  httpGateway:
    options:
      httpConnectionManagerSettings:
{settings}
---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: backend, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 10.0.0.1, port: 8080}}]}}
---
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: web, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
    - matchers: [{{prefix: /}}]
      routeAction: {{single: {{upstream: {{name: backend, namespace: gloo-system}}}}}}
{extra}"
    )
}

/// The connection manager of the plain HTTP listener on 8080, as JSON.
fn hcm_on_8080(t: &gloo_core::translate::Translation) -> Value {
    let json = proxy_json(t);
    json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8080"))
        .expect("the HTTP listener")["filterChains"][0]["filters"][0]["typedConfig"]
        .clone()
}

/// The Gateway's warnings, one per line.
fn gateway_warnings(t: &gloo_core::translate::Translation) -> String {
    common::status(t, Kind::Gateway, &common::gs("edge"))
        .warnings
        .join("\n")
}

const HEADER_SECRET: &str = "---
apiVersion: v1
kind: Secret
metadata: {name: api-headers, namespace: gloo-system}
type: gloo.solo.io/header
stringData: {x-api-key: KEY, x-team: payments}
";

/// Gloo's `earlyHeaderManipulation` becomes the connection manager's early header mutation
/// extension, as Gloo's headers plugin writes it: one `HeaderMutation` appending each header
/// to add (literal, or each key of a `headerSecretRef`'s Secret, whose namespace defaults to
/// the Gateway's), `append` (default true) as `APPEND_IF_EXISTS_OR_ADD` and `append: false`
/// as `OVERWRITE_IF_EXISTS_OR_ADD`, then removing each header to remove, in order. Names
/// Envoy removes though it would not add them (`host`, pseudo-headers) are accepted, as
/// Gloo and Envoy accept them. It is no longer warned about.
#[test]
fn early_header_manipulation_becomes_the_early_header_mutation_extension() {
    let settings = "        earlyHeaderManipulation:
          headersToAdd:
          - header: {key: x-tier, value: gold}
          - header: {key: X-Env, value: '%REQ(x-stage)% 100%%'}
            append: false
          - headerSecretRef: {name: api-headers}
            append: true
          headersToRemove: [x-debug, host, ':authority']";
    let t = translate(&http_gateway(settings, HEADER_SECRET));
    assert_no_rejections(&t);
    let hcm = hcm_on_8080(&t);
    // `APPEND_IF_EXISTS_OR_ADD` is the enum's zero, which proto3 JSON leaves out.
    let append = |key: &str, value: &str, action: &str| {
        let mut option = json!({"header": {"key": key, "value": value}});
        if action != "APPEND_IF_EXISTS_OR_ADD" {
            option["appendAction"] = json!(action);
        }
        json!({ "append": option })
    };
    assert_eq!(
        hcm["earlyHeaderMutationExtensions"],
        json!([{
            "name": "http.early_header_mutation.header_mutation",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                "mutations": [
                    append("x-tier", "gold", "APPEND_IF_EXISTS_OR_ADD"),
                    append("X-Env", "%REQ(x-stage)% 100%%", "OVERWRITE_IF_EXISTS_OR_ADD"),
                    append("x-api-key", "KEY", "APPEND_IF_EXISTS_OR_ADD"),
                    append("x-team", "payments", "APPEND_IF_EXISTS_OR_ADD"),
                    {"remove": "x-debug"},
                    {"remove": "host"},
                    {"remove": ":authority"},
                ],
            },
        }])
    );
    let warnings = gateway_warnings(&t);
    assert!(!warnings.contains("earlyHeaderManipulation"), "{warnings}");

    // A rotated Secret reaches the listener though the Gateway did not change.
    let rotated = HEADER_SECRET.replace("x-api-key: KEY", "x-api-key: KEY2");
    let t = translate(&http_gateway(settings, &rotated));
    assert_eq!(
        hcm_on_8080(&t)["earlyHeaderMutationExtensions"][0]["typedConfig"]["mutations"][2],
        append("x-api-key", "KEY2", "APPEND_IF_EXISTS_OR_ADD")
    );

    // Nothing to add or remove: no extension (Envoy refuses one without mutations).
    let t = translate(&http_gateway("        earlyHeaderManipulation: {}", ""));
    assert_no_rejections(&t);
    assert!(hcm_on_8080(&t)
        .get("earlyHeaderMutationExtensions")
        .is_none());
}

/// What Gloo or Envoy would refuse in `earlyHeaderManipulation` rejects the Gateway, naming
/// the field: a header to add that is both or neither literal and from a Secret, a literal
/// name Envoy may not add (a pseudo-header, `host`) or that is not an HTTP token, a value
/// Envoy cannot read as a substitution format (a lone `%`), a Secret that is missing or whose
/// headers Envoy would refuse, and a name to remove with a newline.
#[test]
fn early_header_manipulation_gloo_or_envoy_would_refuse_rejects_the_gateway() {
    let settings = r#"        earlyHeaderManipulation:
          headersToAdd:
          - header: {key: x-a, value: a}
            headerSecretRef: {name: api-headers}
          - append: true
          - header: {key: ':path', value: /admin}
          - header: {key: Host, value: internal}
          - header: {key: x tier, value: gold}
          - header: {key: x-discount, value: 100%}
          - headerSecretRef: {name: missing}
          - headerSecretRef: {name: bad-headers, namespace: gloo-system}
          headersToRemove: [x-debug, "x-\nb"]"#;
    let bad_secret = "---
apiVersion: v1
kind: Secret
metadata: {name: bad-headers, namespace: gloo-system}
type: gloo.solo.io/header
stringData: {host: internal, x-ok: fine, x-rate: 5%}
";
    let t = translate(&http_gateway(
        settings,
        &format!("{HEADER_SECRET}{bad_secret}"),
    ));
    let at = "spec.httpGateway.options.httpConnectionManagerSettings";
    let early = format!("{at}.earlyHeaderManipulation");
    let format = |byte: usize| {
        format!("Envoy reads header values as substitution formats: the % at byte {byte} starts no command (%COMMAND%, %COMMAND(arg)%), so a literal % must be written %%")
    };
    let expected = [
        format!("{early}.headersToAdd[0]: only one of header, headerSecretRef may be set, found both (oneof `header_option`)"),
        format!("{early}.headersToAdd[1]: set one of header, headerSecretRef"),
        format!("{early}.headersToAdd[2].header.key: :-prefixed or host headers may not be modified, found \":path\""),
        format!("{early}.headersToAdd[3].header.key: :-prefixed or host headers may not be modified, found \"Host\""),
        format!("{early}.headersToAdd[4].header.key: \"x tier\" is an invalid HTTP header key"),
        format!("{early}.headersToAdd[5].header.value: {}", format(3)),
        format!("{early}.headersToRemove[1]: invalid header name \"x-\\nb\" (NUL, CR and LF are not allowed)"),
        format!("{early}.headersToAdd[6].headerSecretRef: Secret gloo-system.missing not found"),
        format!("{early}.headersToAdd[7].headerSecretRef: Secret gloo-system.bad-headers, key \"host\": :-prefixed or host headers may not be modified, found \"host\""),
        format!("{early}.headersToAdd[7].headerSecretRef: Secret gloo-system.bad-headers, the value of \"x-rate\": {}", format(1)),
    ];
    common::assert_status(
        &t,
        Kind::Gateway,
        &common::gs("edge"),
        gloo_core::status::State::Rejected,
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
        &[],
    );
}

/// `properCaseHeaderKeyFormat` and `preserveCaseHeaderKeyFormat` become the connection
/// manager's HTTP/1 `header_key_format`, as Gloo's hcm plugin writes them: proper case words,
/// or Envoy's preserve-case stateful formatter (`envoy.http.stateful_header_formatters.preserve_case`
/// with an empty `PreserveCaseFormatterConfig`), beside the HTTP/1.0 options when both are set.
/// Either set to false still makes (empty) HTTP/1 options, as in Gloo. They are no longer
/// warned about; setting both (one oneof in Gloo's proto) rejects the Gateway.
#[test]
fn http1_key_formats_become_the_connection_managers_header_key_format() {
    let http1 = |settings: &str| {
        let t = translate(&http_gateway(settings, ""));
        assert_no_rejections(&t);
        let warnings = gateway_warnings(&t);
        assert!(!warnings.contains("CaseHeaderKeyFormat"), "{warnings}");
        hcm_on_8080(&t)["httpProtocolOptions"].clone()
    };
    assert_eq!(
        http1("        properCaseHeaderKeyFormat: true"),
        json!({"headerKeyFormat": {"properCaseWords": {}}})
    );
    assert_eq!(
        http1("        preserveCaseHeaderKeyFormat: true\n        acceptHttp10: true"),
        json!({
            "acceptHttp10": true,
            "headerKeyFormat": {"statefulFormatter": {
                "name": "envoy.http.stateful_header_formatters.preserve_case",
                "typedConfig": {
                    "@type": "type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig",
                },
            }},
        })
    );
    assert_eq!(http1("        properCaseHeaderKeyFormat: false"), json!({}));
    assert_eq!(http1("        serverName: edge"), Value::Null);

    let t = translate(&http_gateway(
        "        properCaseHeaderKeyFormat: true\n        preserveCaseHeaderKeyFormat: false",
        "",
    ));
    common::assert_status(
        &t,
        Kind::Gateway,
        &common::gs("edge"),
        gloo_core::status::State::Rejected,
        &["spec.httpGateway.options.httpConnectionManagerSettings: only one of properCaseHeaderKeyFormat, preserveCaseHeaderKeyFormat may be set, found both (oneof `header_format`)"],
        &[],
    );
}

/// An HTTP/1.1 Upstream's `connectionConfig.http1ProtocolOptions` reach its cluster's explicit
/// HTTP/1 options (`envoy.extensions.upstreams.http.v3.HttpProtocolOptions`, beside the
/// connection limits already there), as Gloo's `ConvertHttp1` converts them: trailers, staying
/// open on an invalid message, and the key format; not the cluster's deprecated
/// `http_protocol_options`, where Gloo writes them and Envoy warns. On an HTTP/2 Upstream Gloo
/// refuses them, unless the protocol selection is `USE_DOWNSTREAM_PROTOCOL` (not applied, so
/// they are warned about); setting both key formats is refused.
/// `allowChunkedLength: true` and `enableTrailers: true` become the connection manager's
/// HTTP/1 `allow_chunked_length` and `enable_trailers`, as Gloo's hcm plugin writes them, in
/// the one `Http1ProtocolOptions` beside the HTTP/1.0 options and the key format. False, they
/// change nothing (no HTTP/1 options of their own), as in Gloo. They are no longer warned about.
#[test]
fn allow_chunked_length_and_enable_trailers_become_http1_options() {
    let http1 = |settings: &str| {
        let t = translate(&http_gateway(settings, ""));
        assert_no_rejections(&t);
        let warnings = gateway_warnings(&t);
        assert!(
            !warnings.contains("allowChunkedLength") && !warnings.contains("enableTrailers"),
            "{warnings}"
        );
        hcm_on_8080(&t)["httpProtocolOptions"].clone()
    };
    assert_eq!(
        http1("        allowChunkedLength: true"),
        json!({"allowChunkedLength": true})
    );
    assert_eq!(
        http1("        enableTrailers: true"),
        json!({"enableTrailers": true})
    );
    assert_eq!(
        http1(
            "        acceptHttp10: true
        defaultHostForHttp10: legacy.example.com
        properCaseHeaderKeyFormat: true
        allowChunkedLength: true
        enableTrailers: true"
        ),
        json!({
            "acceptHttp10": true,
            "defaultHostForHttp10": "legacy.example.com",
            "headerKeyFormat": {"properCaseWords": {}},
            "enableTrailers": true,
            "allowChunkedLength": true,
        })
    );
    assert_eq!(
        http1("        allowChunkedLength: false\n        enableTrailers: false"),
        Value::Null
    );
    assert_eq!(
        http1("        acceptHttp10: true\n        enableTrailers: false"),
        json!({"acceptHttp10": true})
    );
}

/// A listener's `headerValidationSettings.disableHttp1MethodValidation: {}` becomes the
/// connection manager's HTTP/1 `allow_custom_methods`, as Gloo's hcm plugin writes it, in the
/// one `Http1ProtocolOptions` with every other HTTP/1 setting; `headerValidationSettings: {}`
/// (its oneof unset) changes nothing, as in Gloo. It is no longer warned about, on a plain
/// Gateway or in a hybrid gateway's HTTP chains (each chain its own); a misspelt member is a
/// load error.
#[test]
fn disable_http1_method_validation_becomes_allow_custom_methods() {
    const DISABLE: &str = "      headerValidationSettings: {disableHttp1MethodValidation: {}}";
    let http1 = |settings: &str| {
        let t = translate(&http_gateway(settings, ""));
        assert_no_rejections(&t);
        let warnings = gateway_warnings(&t);
        assert!(!warnings.contains("headerValidationSettings"), "{warnings}");
        hcm_on_8080(&t)["httpProtocolOptions"].clone()
    };
    assert_eq!(
        http1(&format!("        {{}}\n{DISABLE}")),
        json!({"allowCustomMethods": true})
    );
    // Everything Gloo writes on the connection manager's HTTP/1 options, in one message.
    assert_eq!(
        http1(&format!(
            "        acceptHttp10: true
        properCaseHeaderKeyFormat: true
        allowChunkedLength: true
        enableTrailers: true
{DISABLE}"
        )),
        json!({
            "acceptHttp10": true,
            "headerKeyFormat": {"properCaseWords": {}},
            "enableTrailers": true,
            "allowChunkedLength": true,
            "allowCustomMethods": true,
        })
    );
    assert_eq!(
        http1("        {}\n      headerValidationSettings: {}"),
        Value::Null
    );
    assert_eq!(
        http1("        acceptHttp10: true\n      headerValidationSettings: {}"),
        json!({"acceptHttp10": true})
    );

    // A hybrid gateway's HTTP chains: the one disabling method validation (with the
    // connection manager settings) gets them all, the other none.
    let hybrid = "apiVersion: gateway.solo.io/v1
kind: Gateway
metadata: {name: edge, namespace: gloo-system}
spec:
  bindAddress: '::'
  bindPort: 8090
  hybridGateway:
    matchedGateways:
    - matcher:
        sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]
      httpGateway:
        options:
          headerValidationSettings: {disableHttp1MethodValidation: {}}
          httpConnectionManagerSettings: {allowChunkedLength: true, enableTrailers: true}
    - matcher: {}
      httpGateway: {}
";
    let yaml = http_gateway("        {}", "").replacen(
        "apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {name: edge, namespace: gloo-system}\nspec:\n  bindAddress: '::'\n  bindPort: 8080\n  httpGateway:\n    options:\n      httpConnectionManagerSettings:\n        {}\n",
        hybrid,
        1,
    );
    assert!(yaml.contains("hybridGateway"), "{yaml}");
    let t = translate(&yaml);
    assert_no_rejections(&t);
    let warnings = gateway_warnings(&t);
    assert!(
        !warnings.contains("headerValidationSettings")
            && !warnings.contains("allowChunkedLength")
            && !warnings.contains("enableTrailers"),
        "{warnings}"
    );
    let json = proxy_json(&t);
    let chains = json["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == "listener-::-8090"))
        .expect("the hybrid listener")["filterChains"]
        .clone();
    let http1 = |chain: &str| {
        chains
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == chain))
            .unwrap_or_else(|| panic!("{chain} in {chains:#}"))["filters"][0]["typedConfig"]
            ["httpProtocolOptions"]
            .clone()
    };
    assert_eq!(
        http1("listener-::-8090-0"),
        json!({"allowChunkedLength": true, "enableTrailers": true, "allowCustomMethods": true})
    );
    assert_eq!(http1("listener-::-8090-1"), Value::Null);

    // A misspelt member is refused when the Gateway is loaded, not carried unnoticed.
    let t = translate(&http_gateway(
        "        {}\n      headerValidationSettings: {disableHttp1MethodsValidation: {}}",
        "",
    ));
    let text = t.reports.to_text();
    assert!(text.contains("disableHttp1MethodsValidation"), "{text}");
    assert!(t.reports.has_rejections(), "{text}");
}

/// `setCurrentClientCertDetails` becomes the connection manager's
/// `set_current_client_cert_details` when `forwardClientCertDetails` is `APPEND_FORWARD` or
/// `SANITIZE_SET`, as Gloo's hcm plugin writes it: `subject` as given (unset stays unset), the
/// others true or false. With any other mode (or none) Gloo leaves it out, and so does gloo,
/// with a warning saying why. It is no longer warned about as unapplied; a misspelt member is a
/// load error.
#[test]
fn set_current_client_cert_details_becomes_the_connection_managers() {
    let hcm = |settings: &str| {
        let t = translate(&http_gateway(settings, ""));
        assert_no_rejections(&t);
        (hcm_on_8080(&t), gateway_warnings(&t))
    };
    for mode in ["APPEND_FORWARD", "SANITIZE_SET"] {
        let (hcm, warnings) = hcm(&format!(
            "        forwardClientCertDetails: {mode}
        setCurrentClientCertDetails: {{subject: true, cert: true, chain: false, dns: true, uri: true}}"
        ));
        assert_eq!(hcm["forwardClientCertDetails"], json!(mode));
        assert_eq!(
            hcm["setCurrentClientCertDetails"],
            json!({"subject": true, "cert": true, "dns": true, "uri": true}),
            "{mode}"
        );
        assert!(
            !warnings.contains("setCurrentClientCertDetails"),
            "{warnings}"
        );
    }
    // `subject: false` is written (a BoolValue); unset members are left at Envoy's defaults.
    let (with_false_subject, _) = hcm("        forwardClientCertDetails: SANITIZE_SET
        setCurrentClientCertDetails: {subject: false, uri: true}");
    assert_eq!(
        with_false_subject["setCurrentClientCertDetails"],
        json!({"subject": false, "uri": true})
    );
    let (empty, _) = hcm("        forwardClientCertDetails: APPEND_FORWARD
        setCurrentClientCertDetails: {}");
    assert_eq!(empty["setCurrentClientCertDetails"], json!({}));
    // Other modes: left out, with a warning.
    for mode in [
        None,
        Some("SANITIZE"),
        Some("FORWARD_ONLY"),
        Some("ALWAYS_FORWARD_ONLY"),
    ] {
        let forward = mode
            .map(|m| format!("        forwardClientCertDetails: {m}\n"))
            .unwrap_or_default();
        let (hcm, warnings) = hcm(&format!(
            "{forward}        setCurrentClientCertDetails: {{subject: true, cert: true}}"
        ));
        assert_eq!(hcm["setCurrentClientCertDetails"], Value::Null, "{mode:?}");
        assert!(
            warnings.contains(
                "spec.httpGateway.options.httpConnectionManagerSettings.setCurrentClientCertDetails: ignored, as in Gloo: Envoy sets x-forwarded-client-cert from the client certificate only when forwardClientCertDetails is APPEND_FORWARD or SANITIZE_SET"
            ),
            "{mode:?}: {warnings}"
        );
        assert!(!warnings.contains("does not apply"), "{warnings}");
    }
    // A misspelt member is refused when the Gateway is loaded.
    let t = translate(&http_gateway(
        "        forwardClientCertDetails: SANITIZE_SET\n        setCurrentClientCertDetails: {subjects: true}",
        "",
    ));
    let text = t.reports.to_text();
    assert!(text.contains("subjects"), "{text}");
    assert!(t.reports.has_rejections(), "{text}");
}

/// `uuidRequestIdConfig` becomes the connection manager's `request_id_extension`, as Gloo's
/// hcm plugin writes it: an `envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig` with
/// `packTraceReason` and `useRequestIdForTraceSampling` as given (false written, unset left to
/// Envoy's default), even when both are unset. It is no longer warned about as unapplied; a
/// misspelt member is a load error.
#[test]
fn uuid_request_id_config_becomes_the_request_id_extension() {
    const UUID: &str =
        "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig";
    let extension = |settings: &str| {
        let t = translate(&http_gateway(settings, ""));
        assert_no_rejections(&t);
        let warnings = gateway_warnings(&t);
        assert!(!warnings.contains("uuidRequestIdConfig"), "{warnings}");
        hcm_on_8080(&t)["requestIdExtension"].clone()
    };
    assert_eq!(
        extension(
            "        uuidRequestIdConfig: {packTraceReason: false, useRequestIdForTraceSampling: true}"
        ),
        json!({"typedConfig": {
            "@type": UUID,
            "packTraceReason": false,
            "useRequestIdForTraceSampling": true,
        }})
    );
    assert_eq!(
        extension("        uuidRequestIdConfig: {use_request_id_for_trace_sampling: false}"),
        json!({"typedConfig": {"@type": UUID, "useRequestIdForTraceSampling": false}})
    );
    assert_eq!(
        extension("        uuidRequestIdConfig: {}"),
        json!({"typedConfig": {"@type": UUID}})
    );
    assert_eq!(extension("        {}"), Value::Null);
    let t = translate(&http_gateway(
        "        uuidRequestIdConfig: {packTraceReasons: false}",
        "",
    ));
    let text = t.reports.to_text();
    assert!(text.contains("packTraceReasons"), "{text}");
    assert!(t.reports.has_rejections(), "{text}");
}

#[test]
fn an_http1_upstreams_protocol_options_reach_its_cluster() {
    let upstream = |name: &str, extra: &str| {
        format!(
            "---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: {name}, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 10.0.0.1, port: 8080}}]}}
{extra}
"
        )
    };
    let names = [
        "proper",
        "preserve",
        "plain",
        "h2",
        "downstream",
        "both",
        "downstream-h1",
        "h2-streams",
    ];
    let routes: String = names
        .iter()
        .map(|name| format!("      - matchers: [{{prefix: /{name}}}]\n        routeAction: {{single: {{upstream: {{name: {name}, namespace: gloo-system}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
{routes}{}{}{}{}{}{}{}{}",
        upstream(
            "proper",
            "  connectionConfig:
    maxRequestsPerConnection: 10
    http1ProtocolOptions: {enableTrailers: true, properCaseHeaderKeyFormat: true, overrideStreamErrorOnInvalidHttpMessage: false}"
        ),
        upstream(
            "preserve",
            "  connectionConfig: {http1ProtocolOptions: {preserveCaseHeaderKeyFormat: true}}"
        ),
        upstream("plain", "  connectionConfig: {http1ProtocolOptions: {}}"),
        upstream(
            "h2",
            "  useHttp2: true\n  connectionConfig: {http1ProtocolOptions: {enableTrailers: true}}"
        ),
        upstream(
            "downstream",
            "  useHttp2: true\n  protocolSelection: USE_DOWNSTREAM_PROTOCOL\n  connectionConfig: {http1ProtocolOptions: {enableTrailers: true}}"
        ),
        upstream(
            "both",
            "  connectionConfig: {http1ProtocolOptions: {properCaseHeaderKeyFormat: true, preserveCaseHeaderKeyFormat: false}}"
        ),
        upstream("downstream-h1", "  protocolSelection: USE_DOWNSTREAM_PROTOCOL"),
        upstream(
            "h2-streams",
            "  useHttp2: true\n  maxConcurrentStreams: 50\n  overrideStreamErrorOnInvalidHttpMessage: true"
        ),
    );
    let t = translate(&yaml);
    let json = proxy_json(&t);
    let options = |name: &str| {
        let cluster = json["clusters"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["name"] == format!("{name}_gloo-system"))
            })
            .unwrap_or_else(|| panic!("the cluster of {name}: {}", t.reports.to_text()));
        assert!(cluster.get("httpProtocolOptions").is_none(), "{cluster}");
        cluster["typedExtensionProtocolOptions"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            .clone()
    };
    assert_eq!(
        options("proper"),
        json!({
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "commonHttpProtocolOptions": {"maxRequestsPerConnection": 10},
            "explicitHttpConfig": {"httpProtocolOptions": {
                "enableTrailers": true,
                "headerKeyFormat": {"properCaseWords": {}},
                "overrideStreamErrorOnInvalidHttpMessage": false,
            }},
        })
    );
    assert_eq!(
        options("preserve")["explicitHttpConfig"]["httpProtocolOptions"],
        json!({"headerKeyFormat": {"statefulFormatter": {
            "name": "envoy.http.stateful_header_formatters.preserve_case",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.http.header_formatters.preserve_case.v3.PreserveCaseFormatterConfig",
            },
        }}})
    );
    assert_eq!(
        options("plain")["explicitHttpConfig"],
        json!({"httpProtocolOptions": {}})
    );
    // `USE_DOWNSTREAM_PROTOCOL`: both protocols' options, as Gloo's protocoloptions plugin
    // writes them; the upstream follows the client's protocol.
    assert_eq!(
        options("downstream")["useDownstreamProtocolConfig"],
        json!({
            "httpProtocolOptions": {"enableTrailers": true},
            "http2ProtocolOptions": {},
        })
    );
    // An HTTP/1.1 Upstream that follows the client: HTTP/2's settings are Envoy's defaults.
    assert_eq!(
        options("downstream-h1")["useDownstreamProtocolConfig"],
        json!({"httpProtocolOptions": {}})
    );
    assert_eq!(
        options("h2-streams")["explicitHttpConfig"],
        json!({"http2ProtocolOptions": {
            "maxConcurrentStreams": 50,
            "overrideStreamErrorOnInvalidHttpMessage": true,
        }})
    );
    for name in ["proper", "preserve", "plain", "downstream-h1", "h2-streams"] {
        common::assert_status(
            &t,
            Kind::Upstream,
            &common::gs(name),
            gloo_core::status::State::Accepted,
            &[],
            &[],
        );
    }
    let status = |name: &str| common::status(&t, Kind::Upstream, &common::gs(name));
    assert_eq!(
        status("h2").errors,
        ["spec.connectionConfig.http1ProtocolOptions: Both HTTP1 and HTTP2 options may only be configured with non-default 'Upstream_USE_DOWNSTREAM_PROTOCOL' specified for Protocol Selection"]
    );
    assert!(
        status("downstream").warnings.is_empty(),
        "{:?}",
        status("downstream").warnings
    );
    assert_eq!(
        status("both").errors,
        ["spec.connectionConfig.http1ProtocolOptions: only one of properCaseHeaderKeyFormat, preserveCaseHeaderKeyFormat may be set, found both (oneof `header_format`)"]
    );
}

/// An Upstream's `connectionConfig.tcpKeepalive` and the rest of its
/// `commonHttpProtocolOptions` reach its cluster as Gloo's upstreamconn plugin converts them,
/// instead of being dropped without a word: the keepalive becomes the cluster's
/// `upstream_connection_options.tcp_keepalive` (probes only above 0, the durations rounded up
/// to whole seconds as Gloo's `roundToSecond` rounds them), and `maxHeadersCount` (only above
/// 0, Envoy refuses 0), `maxStreamDuration` and `headersWithUnderscoresAction` join the idle
/// timeout and connection limit in the common options of the cluster's
/// `envoy.extensions.upstreams.http.v3.HttpProtocolOptions` (not the deprecated cluster field
/// Gloo writes), beside the explicit HTTP/1.1 or HTTP/2 config. Setting only common options
/// is enough to make that entry; a keepalive alone is not.
#[test]
fn an_upstreams_keepalive_and_common_http_options_reach_its_cluster() {
    let upstream = |name: &str, extra: &str| {
        format!(
            "---
apiVersion: gloo.solo.io/v1
kind: Upstream
metadata: {{name: {name}, namespace: gloo-system}}
spec:
  static: {{hosts: [{{addr: 10.0.0.1, port: 8080}}]}}
{extra}
"
        )
    };
    let names = ["h1", "h2", "keepalive", "empty"];
    let routes: String = names
        .iter()
        .map(|name| format!("      - matchers: [{{prefix: /{name}}}]\n        routeAction: {{single: {{upstream: {{name: {name}, namespace: gloo-system}}}}}}\n"))
        .collect();
    let yaml = format!(
        "apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata: {{name: all, namespace: gloo-system}}
spec:
  virtualHost:
    domains: ['*']
    routes:
{routes}{}{}{}{}",
        upstream(
            "h1",
            "  connectionConfig:
    maxRequestsPerConnection: 10
    tcpKeepalive: {keepaliveProbes: 3, keepaliveTime: 1.0002s, keepaliveInterval: 1s}
    commonHttpProtocolOptions:
      idleTimeout: 10s
      maxHeadersCount: 50
      maxStreamDuration: 30s
      headersWithUnderscoresAction: REJECT_REQUEST
    http1ProtocolOptions: {enableTrailers: true}"
        ),
        upstream(
            "h2",
            "  useHttp2: true
  connectionConfig:
    tcpKeepalive: {keepaliveProbes: 0, keepaliveTime: 0.5s}
    commonHttpProtocolOptions: {maxHeadersCount: 0, maxStreamDuration: 1.5s, headersWithUnderscoresAction: DROP_HEADER}"
        ),
        upstream(
            "keepalive",
            "  connectionConfig: {tcpKeepalive: {keepaliveInterval: 75s}}"
        ),
        upstream(
            "empty",
            "  connectionConfig: {commonHttpProtocolOptions: {headersWithUnderscoresAction: ALLOW}}"
        ),
    );
    let t = translate(&yaml);
    for name in names {
        common::assert_status(
            &t,
            Kind::Upstream,
            &common::gs(name),
            gloo_core::status::State::Accepted,
            &[],
            &[],
        );
    }
    let json = proxy_json(&t);
    let cluster = |name: &str| {
        json["clusters"]
            .as_array()
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c["name"] == format!("{name}_gloo-system"))
            })
            .unwrap_or_else(|| panic!("the cluster of {name}: {}", t.reports.to_text()))
            .clone()
    };
    let options = |name: &str| {
        let cluster = cluster(name);
        // Nothing on the cluster's deprecated protocol option fields.
        for deprecated in [
            "commonHttpProtocolOptions",
            "httpProtocolOptions",
            "http2ProtocolOptions",
            "maxRequestsPerConnection",
        ] {
            assert!(cluster.get(deprecated).is_none(), "{deprecated}: {cluster}");
        }
        cluster["typedExtensionProtocolOptions"]
            ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            .clone()
    };
    assert_eq!(
        cluster("h1")["upstreamConnectionOptions"],
        json!({"tcpKeepalive": {"keepaliveProbes": 3, "keepaliveTime": 2, "keepaliveInterval": 1}})
    );
    assert_eq!(
        options("h1"),
        json!({
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "commonHttpProtocolOptions": {
                "idleTimeout": "10s",
                "maxHeadersCount": 50,
                "maxStreamDuration": "30s",
                "headersWithUnderscoresAction": "REJECT_REQUEST",
                "maxRequestsPerConnection": 10,
            },
            "explicitHttpConfig": {"httpProtocolOptions": {"enableTrailers": true}},
        })
    );
    // No probe count at 0 (the system default), and no interval where none was given.
    assert_eq!(
        cluster("h2")["upstreamConnectionOptions"],
        json!({"tcpKeepalive": {"keepaliveTime": 1}})
    );
    assert_eq!(
        options("h2"),
        json!({
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "commonHttpProtocolOptions": {
                "maxStreamDuration": "1.500s",
                "headersWithUnderscoresAction": "DROP_HEADER",
            },
            "explicitHttpConfig": {"http2ProtocolOptions": {}},
        })
    );
    // A keepalive alone needs no HTTP options.
    assert_eq!(
        cluster("keepalive")["upstreamConnectionOptions"],
        json!({"tcpKeepalive": {"keepaliveInterval": 75}})
    );
    assert_eq!(options("keepalive"), Value::Null);
    // Common options that change nothing still make the entry, as Gloo still writes them.
    assert_eq!(
        options("empty"),
        json!({
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "commonHttpProtocolOptions": {},
            "explicitHttpConfig": {"httpProtocolOptions": {}},
        })
    );
    assert_eq!(cluster("empty").get("upstreamConnectionOptions"), None);
}
