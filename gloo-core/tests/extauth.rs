//! Ext auth translated as Gloo emits it for stock Envoy: the `envoy.filters.http.ext_authz`
//! filter from Settings `extauth` (or a Gateway's own), `ExtAuthzPerRoute` configs on virtual
//! hosts, routes and weighted destinations with the `config_id` / `source_type` /
//! `source_name` context extensions Gloo's ext auth server reads, the sanitize filter for the
//! user id header, what gloo refuses, and the `ExtAuthConfig`s the server loads
//! (`ext_auth_configs`) with Secrets resolved. `envoy_validate.rs` hands the same kind of
//! config (tests/data/envoy-extauth) to a real Envoy.

mod common;

use base64::Engine;
use common::*;
use gloo_core::model::Kind;
use gloo_core::snapshot::ConfigSnapshot;
use gloo_core::status::Reports;
use serde_json::{json, Value};

const PER_ROUTE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute";
const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";

/// The ext auth server's upstream (`extauth` in `gloo-system`), without `useHttp2`: gloo makes
/// its cluster HTTP/2 for the gRPC service anyway.
fn server_upstream() -> String {
    resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: extauth, namespace: gloo-system}",
        "static: {hosts: [{addr: 10.0.0.9, port: 8083}]}",
    )
}

/// Settings `gloo-system.default` whose `extauth` names the server plus `extra` fields.
fn settings(extra: &str) -> String {
    let mut spec =
        "extauth:\n  extauthzServerRef: {name: extauth, namespace: gloo-system}\n".to_string();
    if !extra.is_empty() {
        spec.push_str(&reindent(extra, 2));
    }
    resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        &spec,
    )
}

fn auth_config(name: &str, spec: &str) -> String {
    resource(
        "enterprise.gloo.solo.io/v1",
        "AuthConfig",
        &format!("{{name: {name}, namespace: gloo-system}}"),
        spec,
    )
}

/// A basic-auth AuthConfig (the basic auth guide's user).
fn basic(name: &str) -> String {
    auth_config(
        name,
        "configs:\n- basicAuth:\n    apr:\n      users:\n        user: {salt: TYiryv0/, hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1}\n",
    )
}

fn disabled() -> Value {
    json!({"@type": PER_ROUTE, "disabled": true})
}

fn check_settings(extensions: Value) -> Value {
    json!({"@type": PER_ROUTE, "checkSettings": {"contextExtensions": extensions}})
}

fn config_ref(config: &str, source_type: &str, source_name: &str) -> Value {
    check_settings(json!({
        "config_id": config,
        "source_type": source_type,
        "source_name": source_name,
    }))
}

/// The VirtualService of the plugin tests: auth on the host; a route that switches it off;
/// one with its own AuthConfig; one with custom context extensions; one splitting between a
/// destination with its own AuthConfig and one with auth off; one that inherits.
fn app() -> String {
    vs(
        "app",
        "
        domains: [app.example]
        options:
          extauth: {configRef: {name: basic, namespace: gloo-system}}
        routes:
        - matchers: [{prefix: /public}]
          options: {extauth: {disable: true}}
          routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        - matchers: [{prefix: /admin}]
          options: {extauth: {configRef: {name: admins, namespace: gloo-system}}}
          routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        - matchers: [{prefix: /custom}]
          options: {extauth: {customAuth: {contextExtensions: {team: blue}}}}
          routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        - matchers: [{prefix: /split}]
          routeAction:
            multi:
              destinations:
              - destination: {upstream: {name: up, namespace: gloo-system}}
                weight: 1
                options: {extauth: {configRef: {name: admins, namespace: gloo-system}}}
              - destination: {upstream: {name: up, namespace: gloo-system}}
                weight: 1
                options: {extauth: {disable: true}}
        - matchers: [{prefix: /}]
          routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        ",
    )
}

/// A VirtualService on the same listener that asks for no auth.
fn open() -> String {
    vs(
        "open",
        "
        domains: [open.example]
        routes:
        - routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        ",
    )
}

fn route_filter(vh: &Value, i: usize) -> Value {
    vh["routes"][i]["typedPerFilterConfig"][EXT_AUTHZ].clone()
}

#[test]
fn filter_and_per_route_configs_follow_gloo() {
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &settings(""),
        &basic("basic"),
        &basic("admins"),
        &app(),
        &open(),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "io.solo.filters.http.sanitize",
            EXT_AUTHZ,
            // Gloo's default gRPC-Web filter, after auth.
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router"
        ]
    );
    let filters = http_filters(&t);
    // Gloo's `GenerateEnvoyConfigForFilter` with its defaults: 200ms, the JWT filter's metadata.
    assert_eq!(
        filters[1]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpcService": {
                "envoyGrpc": {"clusterName": "extauth_gloo-system"},
                "timeout": "0.200s",
            },
            "metadataContextNamespaces": ["envoy.filters.http.jwt_authn"],
        })
    );
    // Only the auth server sets the user id header.
    assert_eq!(
        filters[0]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            "mutations": {"requestMutations": [{"remove": "x-user-id"}]},
        })
    );
    let vh = vhost_json(&t, "app");
    assert_eq!(
        vh["typedPerFilterConfig"][EXT_AUTHZ],
        config_ref(
            "gloo-system.basic",
            "virtual_host",
            "gloo-system.gateway-proxy-listener-::-8080-gloo-system_app"
        )
    );
    assert_eq!(route_filter(&vh, 0), disabled());
    assert_eq!(
        route_filter(&vh, 1),
        config_ref("gloo-system.admins", "route", "")
    );
    assert_eq!(
        route_filter(&vh, 2),
        check_settings(json!({"team": "blue"}))
    );
    // The split route inherits; each destination has its own.
    assert_eq!(route_filter(&vh, 3), Value::Null);
    let weighted = &vh["routes"][3]["route"]["weightedClusters"]["clusters"];
    assert_eq!(
        weighted[0]["typedPerFilterConfig"][EXT_AUTHZ],
        config_ref("gloo-system.admins", "weighted_destination", "")
    );
    assert_eq!(weighted[1]["typedPerFilterConfig"][EXT_AUTHZ], disabled());
    assert_eq!(route_filter(&vh, 4), Value::Null);
    // Auth is opt-in: a host that does not ask has the filter switched off.
    assert_eq!(
        vhost_json(&t, "open")["typedPerFilterConfig"][EXT_AUTHZ],
        disabled()
    );
    // The filter calls the server's cluster, over HTTP/2.
    let cluster = proxy_json(&t)["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "extauth_gloo-system")
        .cloned()
        .expect("the ext auth server's cluster");
    assert!(
        cluster["typedExtensionProtocolOptions"]
            .to_string()
            .contains("http2ProtocolOptions"),
        "{cluster:#}"
    );
}

#[test]
fn settings_fields_map_one_to_one() {
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &settings(
            "
            userIdHeader: x-authenticated-user
            requestTimeout: 0.5s
            failureModeAllow: true
            requestBody: {maxRequestBytes: 0, allowPartialMessage: true, packAsBytes: true}
            clearRouteCache: true
            statusOnError: 503
            transportApiVersion: V3
            statPrefix: gloo
            grpcService: {authority: auth.example}
            ",
        ),
        &basic("basic"),
        &basic("admins"),
        &app(),
    ]));
    assert_no_rejections(&t);
    let filters = http_filters(&t);
    assert_eq!(
        filters[1]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "grpcService": {
                "envoyGrpc": {"clusterName": "extauth_gloo-system", "authority": "auth.example"},
                "timeout": "0.500s",
            },
            "transportApiVersion": "V3",
            "failureModeAllow": true,
            // A max of 0 is Gloo's default, 4KB.
            "withRequestBody": {"maxRequestBytes": 4096, "allowPartialMessage": true, "packAsBytes": true},
            "clearRouteCache": true,
            "statusOnError": {"code": "ServiceUnavailable"},
            "statPrefix": "gloo",
            "metadataContextNamespaces": ["envoy.filters.http.jwt_authn"],
        })
    );
    assert_eq!(
        filters[0]["typedConfig"]["mutations"],
        json!({"requestMutations": [{"remove": "x-authenticated-user"}]})
    );
}

#[test]
fn an_http_service_is_gloos_http_service() {
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &settings(
            "
            httpService:
              pathPrefix: /auth/
              request:
                allowedHeaders: [authorization]
                allowedHeadersRegex: ['x-.*']
                headersToAdd: {x-from: gloo}
              response:
                allowedUpstreamHeaders: [x-user]
                allowedClientHeaders: [www-authenticate]
                allowedUpstreamHeadersToAppend: [x-trace]
            ",
        ),
        &basic("basic"),
        &basic("admins"),
        &app(),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        http_filters(&t)[1]["typedConfig"]["httpService"],
        json!({
            "serverUri": {
                "uri": "http://not-used.example.com/",
                "cluster": "extauth_gloo-system",
                "timeout": "0.200s",
            },
            "pathPrefix": "/auth",
            "authorizationRequest": {
                "allowedHeaders": {"patterns": [
                    {"exact": "authorization"},
                    {"safeRegex": {"regex": "x-.*"}},
                ]},
                "headersToAdd": [{"key": "x-from", "value": "gloo"}],
            },
            "authorizationResponse": {
                "allowedUpstreamHeaders": {"patterns": [{"exact": "x-user"}]},
                "allowedClientHeaders": {"patterns": [{"exact": "www-authenticate"}]},
                "allowedUpstreamHeadersToAppend": {"patterns": [{"exact": "x-trace"}]},
            },
        })
    );
}

#[test]
fn stages_place_ext_auth_between_the_jwt_filters_and_after_transformation_namespaces_are_read() {
    let jwks = r#"{"keys":[{"kty":"oct","kid":"k","k":"c2VjcmV0"}]}"#;
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &settings(""),
        &basic("basic"),
        &vs(
            "app",
            &format!(
                "
                domains: [app.example]
                options:
                  extauth: {{configRef: {{name: basic, namespace: gloo-system}}}}
                  jwtStaged:
                    beforeExtAuth: {{providers: {{a: {{jwks: {{local: {{key: '{jwks}'}}}}}}}}}}
                    afterExtAuth: {{providers: {{b: {{jwks: {{local: {{key: '{jwks}'}}}}}}}}}}
                  stagedTransformations:
                    early:
                      requestTransforms:
                      - requestTransformation:
                          transformationTemplate:
                            dynamicMetadataValues:
                            - {{metadataNamespace: z.example, key: k, value: {{text: v}}}}
                            - {{metadataNamespace: a.example, key: k, value: {{text: v}}}}
                routes:
                - routeAction: {{single: {{upstream: {{name: up, namespace: gloo-system}}}}}}
                "
            ),
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "io.solo.transformation",
            "envoy.filters.http.jwt_authn",
            "io.solo.filters.http.sanitize",
            EXT_AUTHZ,
            "envoy.filters.http.jwt_authn.after_ext_auth",
            // Gloo's default gRPC-Web filter, then the regular transformation stage (the
            // same stage, after auth, ordered by name).
            "envoy.filters.http.grpc_web",
            "io.solo.transformation",
            "envoy.filters.http.router"
        ]
    );
    assert_eq!(
        http_filters(&t)[3]["typedConfig"]["metadataContextNamespaces"],
        json!(["envoy.filters.http.jwt_authn", "a.example", "z.example"])
    );
}

#[test]
fn no_filter_where_nothing_asks_for_auth() {
    let t = translate(&docs(&[&up(), &server_upstream(), &settings(""), &open()]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
    assert_eq!(vhost_json(&t, "open").get("typedPerFilterConfig"), None);
    assert!(!proxy(&t).clusters.contains_key("extauth_gloo-system"));
}

#[test]
fn a_gateway_may_name_its_own_server() {
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &static_upstream("gw-auth", 9000),
        &basic("basic"),
        &basic("admins"),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway:\n  options:\n    extauth:\n      extauthzServerRef: {name: gw-auth, namespace: gloo-system}\n      failureModeAllow: true\n",
        ),
        &app(),
    ]));
    assert_no_rejections(&t);
    let config = &http_filters(&t)[1]["typedConfig"];
    assert_eq!(
        config["grpcService"]["envoyGrpc"]["clusterName"],
        "gw-auth_gloo-system"
    );
    assert_eq!(config["failureModeAllow"], true);
    assert!(proxy(&t).clusters.contains_key("gw-auth_gloo-system"));
}

#[test]
fn auth_without_a_server_is_not_served() {
    // No Settings at all: the host that asks for auth is refused on the Gateway, the other
    // one serves.
    let t = translate(&docs(&[
        &up(),
        &basic("basic"),
        &basic("admins"),
        &app(),
        &open(),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("app"),
        Rejected,
        &["extauth: Gateway gloo-system.gateway-proxy has no usable ext auth server (set Settings spec.extauth.extauthzServerRef, or the Gateway's httpGateway.options.extauth, to an existing Upstream); not served there rather than served without auth"],
        &[],
    );
    assert_eq!(vhost_names(route_config(&t)), ["gloo-system_open"]);

    // A server upstream that does not exist, and an unknown status: the Settings say so.
    let t = translate(&docs(&[
        &up(),
        &settings("statusOnError: 499"),
        &basic("basic"),
        &basic("admins"),
        &app(),
    ]));
    assert_status(
        &t,
        Kind::Settings,
        &gs("default"),
        Rejected,
        &[
            "spec.extauth.extauthzServerRef: extauth server upstream gloo-system.extauth not found",
            "spec.extauth.statusOnError: invalid statusOnError code: 499",
        ],
        &[],
    );
    assert_eq!(status(&t, Kind::VirtualService, &gs("app")).state, Rejected);

    // A Gateway's own server without a reference: the Gateway is refused.
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: gw, namespace: gloo-system}",
            "bindPort: 8080\nhttpGateway: {options: {extauth: {failureModeAllow: true}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::Gateway,
        &gs("gw"),
        Rejected,
        &["spec.httpGateway.options.extauth.extauthzServerRef: no extauth server reference configured"],
        &[],
    );
}

#[test]
fn references_gloo_cannot_enforce_are_rejected_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &server_upstream(),
        &settings(""),
        &resource(
            "gloo.solo.io/v1",
            "Settings",
            "{name: named, namespace: gloo-system}",
            "namedExtauth: {other: {extauthzServerRef: {name: extauth, namespace: gloo-system}}}",
        ),
        &vs(
            "missing",
            "
            domains: [missing.example]
            options: {extauth: {configRef: {name: nope, namespace: gloo-system}}}
            routes:
            - matchers: [{prefix: /}]
              routeAction:
                multi:
                  destinations:
                  - destination: {upstream: {name: up, namespace: gloo-system}}
                    weight: 1
                    options: {extauth: {configRef: {name: gone, namespace: gloo-system}}}
            ",
        ),
        &vs(
            "bad",
            "
            domains: [bad.example]
            routes:
            - matchers: [{prefix: /a}]
              options: {extauth: {configRef: {name: basic}}}
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            - matchers: [{prefix: /b}]
              options: {extauth: {disable: true, customAuth: {}}}
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            - matchers: [{prefix: /c}]
              options: {extauth: {customAuth: {name: other}}}
              routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
            ",
        ),
        &rt(
            "{name: table, namespace: gloo-system}",
            "routes:\n- matchers: [{prefix: /t}]\n  options: {extauth: {configRef: {name: nope, namespace: gloo-system}}}\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}\n",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("missing"),
        Rejected,
        &[
            "spec.virtualHost.options.extauth.configRef: list did not find authConfig gloo-system.nope",
            "spec.virtualHost.routes[0].routeAction.multi.destinations[0].options.extauth.configRef: list did not find authConfig gloo-system.gone",
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("bad"),
        Rejected,
        &[
            "spec.virtualHost.routes[0].options.extauth.configRef: AuthConfig \"basic\" needs its namespace (Gloo looks a reference without one up in the namespace \"\" and finds nothing)",
            "spec.virtualHost.routes[1].options.extauth: only one of disable, customAuth may be set, found both (oneof `spec`)",
            "spec.virtualHost.routes[2].options.extauth.customAuth.name: named ext auth servers (Settings namedExtauth) need Gloo Enterprise's sanitize filter, which stock Envoy lacks; gloo does not enforce them yet, so this is rejected rather than served without auth",
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("table"),
        Rejected,
        &["spec.routes[0].options.extauth.configRef: list did not find authConfig gloo-system.nope"],
        &[],
    );
    assert_status(
        &t,
        Kind::Settings,
        &gs("named"),
        Rejected,
        &["spec.namedExtauth: several ext auth servers need Gloo Enterprise's sanitize filter, which stock Envoy lacks; gloo does not serve them yet"],
        &[],
    );
}

#[test]
fn option_resources_naming_a_missing_auth_config_refuse_what_uses_them() {
    let yaml = |with_config: bool| {
        let mut parts = vec![
            up(),
            server_upstream(),
            settings(""),
            resource(
                "gateway.solo.io/v1",
                "VirtualHostOption",
                "{name: vho, namespace: gloo-system}",
                "options: {extauth: {configRef: {name: basic, namespace: gloo-system}}}",
            ),
            resource(
                "gateway.solo.io/v1",
                "RouteOption",
                "{name: ro, namespace: gloo-system}",
                "options: {extauth: {configRef: {name: basic, namespace: gloo-system}}}",
            ),
            vs(
                "host",
                "
                domains: [host.example]
                optionsConfigRefs: {delegateOptions: [{name: vho}]}
                routes:
                - routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
                ",
            ),
            vs(
                "route",
                "
                domains: [route.example]
                routes:
                - matchers: [{prefix: /admin}]
                  optionsConfigRefs: {delegateOptions: [{name: ro}]}
                  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
                - matchers: [{prefix: /}]
                  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
                ",
            ),
        ];
        if with_config {
            parts.push(basic("basic"));
        }
        docs(&parts.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let mut translator = gloo_core::translate::Translator::new();
    let t = translate_with(&mut translator, &yaml(false));
    assert_status(
        &t,
        Kind::VirtualHostOption,
        &gs("vho"),
        Rejected,
        &["spec.options.extauth.configRef: list did not find authConfig gloo-system.basic"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("host"),
        Rejected,
        &["spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.vho sets invalid ext auth options; the virtual host serves no routes rather than serving them without"],
        &[],
    );
    assert!(vhost_routes(route_config(&t), "gloo-system_host").is_empty());
    assert_eq!(
        status(&t, Kind::VirtualService, &gs("route")).errors,
        ["spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.ro sets invalid ext auth options; the route answers 503 rather than being served without them"]
    );
    // The AuthConfig appears: the cached hosts are resolved again and take the options.
    let t = translate_with(&mut translator, &yaml(true));
    assert_no_rejections(&t);
    assert_eq!(
        vhost_json(&t, "host")["typedPerFilterConfig"][EXT_AUTHZ]["checkSettings"]
            ["contextExtensions"]["config_id"],
        "gloo-system.basic"
    );
    assert_eq!(
        route_filter(&vhost_json(&t, "route"), 0),
        config_ref("gloo-system.basic", "route", "")
    );
}

#[test]
fn removing_the_server_retranslates_the_hosts() {
    let with = docs(&[
        &up(),
        &server_upstream(),
        &settings(""),
        &basic("basic"),
        &open(),
        &vs(
            "app",
            "
        domains: [app.example]
        routes:
        - matchers: [{prefix: /}]
          options: {extauth: {configRef: {name: basic, namespace: gloo-system}}}
          routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
        ",
        ),
    ]);
    let mut translator = gloo_core::translate::Translator::new();
    let t = translate_with(&mut translator, &with);
    assert_eq!(
        vhost_json(&t, "open")["typedPerFilterConfig"][EXT_AUTHZ],
        disabled()
    );
    // The app now switches auth off: no host asks, so the filter and its configs go.
    let without = with.replace(
        "extauth: {configRef: {name: basic, namespace: gloo-system}}",
        "extauth: {disable: true}",
    );
    let t = translate_with(&mut translator, &without);
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
    assert_eq!(vhost_json(&t, "open").get("typedPerFilterConfig"), None);
}

// ----- the configs the server loads ---------------------------------------------------------

fn configs(
    yaml: &str,
) -> (
    std::collections::BTreeMap<String, Value>,
    gloo_core::translate::Translation,
) {
    let source = snapshot(yaml);
    let snapshot = ConfigSnapshot::from_source(&source, &mut Reports::default());
    (
        gloo_core::translate::ext_auth_configs(&snapshot),
        translate(yaml),
    )
}

fn secret(name: &str, labels: &str, type_: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system, labels: {{{labels}}}}}\ntype: {type_}\nstringData: {{{data}}}\n"
    )
}

#[test]
fn basic_auth_configs_go_to_the_server_as_gloo_sends_them() {
    let (configs, t) = configs(&docs(&[
        &basic("legacy"),
        &auth_config(
            "extended",
            "
            booleanExpr: second || first
            failOnRedirect: true
            configs:
            - name: second
              basicAuth:
                realm: gloo
                encryption: {sha1: {}}
                userList: {users: {user: {salt: s, hashedPassword: h}}}
            - name: first
              jwt: {}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        configs["gloo-system.legacy"],
        json!({
            "authConfigRefName": "gloo-system.legacy",
            "configs": [{"basicAuth": {"apr": {"users": {"user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"}}}}}],
        })
    );
    // Sorted by name, as Gloo sorts them.
    assert_eq!(
        configs["gloo-system.extended"],
        json!({
            "authConfigRefName": "gloo-system.extended",
            "booleanExpr": "second || first",
            "failOnRedirect": true,
            "configs": [
                {"name": "first", "jwt": {}},
                {"name": "second", "basicAuthInternal": {
                    "realm": "gloo",
                    "encryption": {"sha1": {}},
                    "userList": {"users": {"user": {"salt": "s", "hashedPassword": "h"}}},
                }},
            ],
        })
    );
}

#[test]
fn api_keys_are_read_from_their_secrets() {
    let (configs, t) = configs(&docs(&[
        &secret(
            "infra-apikey",
            "team: infrastructure",
            "extauth.solo.io/apikey",
            "api-key: key-1, user-id: u1",
        ),
        &secret(
            "direct",
            "",
            "extauth.solo.io/apikey",
            "api-key: key-2, user-id: u2",
        ),
        &secret(
            "other-team",
            "team: other",
            "extauth.solo.io/apikey",
            "api-key: key-3",
        ),
        &auth_config(
            "keys",
            "
            configs:
            - apiKeyAuth:
                headerName: api-key
                headersFromMetadataEntry:
                  x-user-id: {name: user-id, required: true}
                k8sSecretApikeyStorage:
                  labelSelector: {team: infrastructure}
                  apiKeySecretRefs: [{name: direct, namespace: gloo-system}]
            ",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        configs["gloo-system.keys"]["configs"][0]["apiKeyAuth"],
        json!({
            "headerName": "api-key",
            "headersFromKeyMetadata": {"x-user-id": "user-id"},
            "validApiKeys": {
                "key-1": {"username": "infra-apikey", "metadata": {"user-id": "u1"}},
                "key-2": {"username": "direct", "metadata": {"user-id": "u2"}},
            },
        })
    );
}

#[test]
fn oauth_client_secrets_are_resolved() {
    let (configs, t) = configs(&docs(&[
        &secret("oauth", "", "extauth.solo.io/oauth", "client-secret: s3cr3t"),
        &secret("intro", "", "extauth.solo.io/oauth", "client-secret: intro-secret"),
        &secret("cipher", "", "gloo.solo.io.EncryptionKeySecret", "key: 0123456789abcdef0123456789abcdef"),
        &auth_config(
            "oidc",
            "
            configs:
            - oauth2:
                oidcAuthorizationCode:
                  appUrl: http://localhost:8080/
                  callbackPath: /callback
                  clientId: gloo
                  clientSecretRef: {name: oauth, namespace: gloo-system}
                  issuerUrl: http://issuer.example/
                  scopes: [email]
                  session:
                    cipherConfig: {keyRef: {name: cipher, namespace: gloo-system}}
                    redis: {cookieName: session, headerName: x-session, options: {host: 'redis:6379'}}
            ",
        ),
        &auth_config(
            "tokens",
            "
            configs:
            - oauth2:
                accessTokenValidation:
                  introspection:
                    introspectionUrl: http://hydra.example/introspect
                    clientId: my-client
                    clientSecretRef: {name: intro, namespace: gloo-system}
                  requiredScopes: {scope: [read]}
            ",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        configs["gloo-system.oidc"]["configs"][0]["oauth2"]["oidcAuthorizationCode"],
        json!({
            "appUrl": "http://localhost:8080/",
            "callbackPath": "/callback",
            "clientId": "gloo",
            "clientSecret": "s3cr3t",
            "issuerUrl": "http://issuer.example/",
            "scopes": ["email"],
            "sessionIdHeaderName": "x-session",
            "userSession": {
                "redis": {"cookieName": "session", "headerName": "x-session", "options": {"host": "redis:6379"}},
                "cipherConfig": {"key": "0123456789abcdef0123456789abcdef"},
            },
        })
    );
    assert_eq!(
        configs["gloo-system.tokens"]["configs"][0]["oauth2"]["accessTokenValidationConfig"],
        json!({
            "introspection": {
                "introspectionUrl": "http://hydra.example/introspect",
                "clientId": "my-client",
                "clientSecret": "intro-secret",
            },
            "requiredScopes": {"scope": ["read"]},
        })
    );
}

#[test]
fn passthrough_tls_secrets_are_resolved_into_passthrough_internal() {
    let (configs, t) = configs(&docs(&[
        &secret(
            "auth-tls",
            "",
            "kubernetes.io/tls",
            "tls.crt: CERT-PEM, tls.key: KEY-PEM, ca.crt: CA-PEM",
        ),
        &secret("ca-only", "", "kubernetes.io/tls", "ca.crt: CA-PEM"),
        &auth_config(
            "grpc-mtls",
            "
            configs:
            - passThroughAuth:
                grpc:
                  address: auth.example:9001
                  tlsConfig:
                    secretRef: {name: auth-tls, namespace: gloo-system}
                    sslParams: {minimumProtocolVersion: TLSv1_3}
                  retryPolicy: {numRetries: 3}
                config: {team: blue}
            ",
        ),
        &auth_config(
            "http-tls",
            "
            configs:
            - passThroughAuth:
                http:
                  url: https://auth.example/check
                  tlsConfig: {secretRef: {name: ca-only, namespace: gloo-system}}
            ",
        ),
        &auth_config(
            "system-cas",
            "configs:\n- passThroughAuth: {grpc: {address: auth.example:9001, tlsConfig: {}}}\n",
        ),
        &auth_config(
            "plain",
            "configs:\n- passThroughAuth: {grpc: {address: auth.example:9001}}\n",
        ),
        &auth_config(
            "missing",
            "
            configs:
            - passThroughAuth:
                grpc:
                  address: auth.example:9001
                  tlsConfig: {secretRef: {name: gone, namespace: gloo-system}}
            ",
        ),
    ]));
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    assert_eq!(
        configs["gloo-system.grpc-mtls"]["configs"][0],
        json!({"passthroughInternal": {
            "passThroughAuth": {
                "grpc": {"address": "auth.example:9001", "retryPolicy": {"numRetries": 3}},
                "config": {"team": "blue"},
            },
            "tlsConfigData": {
                "certPem": b64("CERT-PEM"),
                "keyPem": b64("KEY-PEM"),
                "rootCaPem": b64("CA-PEM"),
                "sslParams": {"minimumProtocolVersion": "TLSv1_3"},
            },
        }})
    );
    assert_eq!(
        configs["gloo-system.http-tls"]["configs"][0],
        json!({"passthroughInternal": {
            "passThroughAuth": {"http": {"url": "https://auth.example/check"}},
            "tlsConfigData": {"rootCaPem": b64("CA-PEM")},
        }})
    );
    // TLS without a Secret: the system's CA certificates.
    assert_eq!(
        configs["gloo-system.system-cas"]["configs"][0],
        json!({"passthroughInternal": {
            "passThroughAuth": {"grpc": {"address": "auth.example:9001"}},
            "tlsConfigData": {},
        }})
    );
    assert_eq!(
        configs["gloo-system.plain"]["configs"][0],
        json!({"passThroughAuth": {"grpc": {"address": "auth.example:9001"}}})
    );
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("missing"),
        Rejected,
        &["spec.configs[0].passThroughAuth.grpc.tlsConfig.secretRef: Secret gloo-system.gone not found"],
        &[],
    );
    assert!(!configs.contains_key("gloo-system.missing"));
}

#[test]
fn auth_configs_gloo_cannot_resolve_are_rejected_and_not_sent() {
    let (configs, t) = configs(&docs(&[
        &secret("not-a-key", "team: infra", "Opaque", "api-key: k"),
        &secret("no-user", "", "extauth.solo.io/apikey", "api-key: k2"),
        &auth_config(
            "keys",
            "
            configs:
            - apiKeyAuth:
                labelSelector: {team: infra}
                apiKeySecretRefs: [{name: no-user, namespace: gloo-system}, {name: gone, namespace: gloo-system}]
                headersFromMetadataEntry: {x-user: {name: user, required: true}}
            ",
        ),
        &auth_config(
            "oidc",
            "
            configs:
            - oauth2:
                oidcAuthorizationCode:
                  appUrl: http://localhost:8080/
                  clientId: gloo
                  clientSecretRef: {name: missing, namespace: gloo-system}
                  issuerUrl: http://issuer.example/
            ",
        ),
        &auth_config(
            "nobody",
            "configs:\n- apiKeyAuth: {labelSelector: {team: none}}\n",
        ),
        &auth_config("empty", "configs: []\n"),
    ]));
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("keys"),
        Rejected,
        &[
            "spec.configs[0].apiKeyAuth.apiKeySecretRefs[1]: Secret gloo-system.gone not found",
            "spec.configs[0].apiKeyAuth: API key secret [gloo-system.no-user] does not contain the required [user] metadata entry",
            "spec.configs[0].apiKeyAuth: secret [gloo-system.not-a-key] is not an API key secret (type extauth.solo.io/apikey with data key api-key)",
        ],
        &[],
    );
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("oidc"),
        Rejected,
        &[
            "spec.configs[0].oauth2.oidcAuthorizationCode.callbackPath: required (oidc: all of issuerUrl, clientId, clientSecretRef, appUrl, callbackPath must be provided)",
            "spec.configs[0].oauth2.oidcAuthorizationCode.clientSecretRef: Secret gloo-system.missing not found",
        ],
        &[],
    );
    // A selector matching nothing yet is a warning (the Secret may come later).
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("nobody"),
        Warning,
        &[],
        &["spec.configs[0].apiKeyAuth.labelSelector: no matching apikey secrets for the provided label selector {\"team\": \"none\"}"],
    );
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("empty"),
        Rejected,
        &["spec.configs: at least one auth config is required"],
        &[],
    );
    assert_eq!(configs.keys().collect::<Vec<_>>(), ["gloo-system.nobody"]);
}

#[test]
fn the_translation_hands_the_server_its_configs_keeping_a_rejected_ones_last_good_version() {
    let settings = |upstream: &str| {
        format!(
            "apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  extauth:\n    extauthzServerRef: {{name: {upstream}, namespace: gloo-system}}\n    userIdHeader: x-auth-user\n---\napiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: extauth, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: localhost, port: 8083}}, {{addr: 10.0.0.1, port: 8083}}]\n"
        )
    };
    let key = |secret: &str| {
        auth_config(
            "keys",
            &format!("configs:\n- apiKeyAuth:\n    apiKeySecretRefs: [{{name: {secret}, namespace: gloo-system}}]\n"),
        )
    };
    let robot = secret("robot", "", "extauth.solo.io/apikey", "api-key: k1");
    let mut translator = gloo_core::translate::Translator::new();
    let first = translate_with(
        &mut translator,
        &docs(&[&settings("extauth"), &basic("basic"), &key("robot"), &robot]),
    )
    .ext_auth_server;
    assert_eq!(
        first.configs.keys().collect::<Vec<_>>(),
        ["gloo-system.basic", "gloo-system.keys"]
    );
    assert_eq!(
        first.configs["gloo-system.keys"]["configs"][0]["apiKeyAuth"]["validApiKeys"]["k1"]
            ["username"],
        "robot"
    );
    assert_eq!(first.grpc_server, Some(gs("extauth")));
    assert_eq!(
        first.grpc_server_static_hosts,
        [
            ("localhost".to_string(), 8083),
            ("10.0.0.1".to_string(), 8083)
        ]
    );
    assert_eq!(first.user_id_header, "x-auth-user");

    // `keys` names a missing Secret: Rejected, its last good version stays; `basic` is gone.
    let second = translate_with(
        &mut translator,
        &docs(&[&settings("elsewhere"), &key("gone"), &robot]),
    );
    assert_status(
        &second,
        Kind::AuthConfig,
        &gs("keys"),
        Rejected,
        &["spec.configs[0].apiKeyAuth.apiKeySecretRefs[0]: Secret gloo-system.gone not found"],
        &[],
    );
    let second = second.ext_auth_server;
    assert_eq!(
        second.configs.keys().collect::<Vec<_>>(),
        ["gloo-system.keys"]
    );
    assert_eq!(
        second.configs["gloo-system.keys"],
        first.configs["gloo-system.keys"]
    );
    // The server's Upstream does not exist: no hosts.
    assert_eq!(second.grpc_server, Some(gs("elsewhere")));
    assert!(second.grpc_server_static_hosts.is_empty());

    // Deleted while Rejected: forgotten, so it does not come back when it reappears broken.
    translate_with(&mut translator, &docs(&[&settings("extauth")]));
    let third = translate_with(
        &mut translator,
        &docs(&[&settings("extauth"), &key("gone"), &robot]),
    )
    .ext_auth_server;
    assert!(third.configs.is_empty(), "{:?}", third.configs);
}

// ----- OPA modules from ConfigMaps -------------------------------------------------------------

/// A ConfigMap `<namespace>.<name>` holding `data` (a YAML flow map).
fn config_map(namespace: &str, name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\ndata: {data}\n")
}

/// Gloo's OPA guide: the policy in a ConfigMap, `opaAuth` naming it.
const ALLOW_GET_USERS: &str = "package test\n\ndefault allow = false\nallow {\n    startswith(input.http_request.path, \"/api/pets\")\n    input.http_request.method == \"GET\"\n}\n";

#[test]
fn opa_modules_are_the_entries_of_their_config_maps() {
    let (configs, t) = configs(&docs(&[
        &config_map(
            "gloo-system",
            "allow-get-users",
            &format!("{{policy.rego: {}}}", serde_json::to_string(ALLOW_GET_USERS).unwrap()),
        ),
        // A Gloo Artifact is read alike; its entries are modules too.
        "apiVersion: gloo.solo.io/v1\nkind: Artifact\nmetadata: {name: helpers, namespace: policies}\ndata: {lib.rego: 'package lib', more.rego: 'package more'}\n",
        &auth_config(
            "opa",
            "
            configs:
            - opaAuth:
                modules:
                - {name: allow-get-users, namespace: gloo-system}
                - {name: helpers, namespace: policies}
                query: data.test.allow == true
                options: {fastInputConversion: true}
            ",
        ),
    ]));
    assert_status(&t, Kind::AuthConfig, &gs("opa"), Accepted, &[], &[]);
    assert_eq!(
        configs["gloo-system.opa"]["configs"][0],
        json!({"opaAuth": {
            "modules": {
                "policy.rego": ALLOW_GET_USERS,
                "lib.rego": "package lib",
                "more.rego": "package more",
            },
            "query": "data.test.allow == true",
            "options": {"fastInputConversion": true},
        }})
    );
}

#[test]
fn opa_modules_gloo_cannot_read_reject_the_auth_config() {
    let (configs, t) = configs(&docs(&[
        &config_map(
            "gloo-system",
            "one",
            "{policy.rego: 'package one', a.rego: 'package a'}",
        ),
        &config_map("gloo-system", "two", "{policy.rego: 'package two'}"),
        &auth_config(
            "opa",
            "
            configs:
            - opaAuth:
                modules:
                - {name: one, namespace: gloo-system}
                - {name: gone, namespace: gloo-system}
                - {name: one}
                - {name: two, namespace: gloo-system}
                query: data.test.allow == true
            - name: second
              opaAuth:
                modules: [{name: two, namespace: gloo-system}]
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::AuthConfig,
        &gs("opa"),
        Rejected,
        &[
            "spec.configs[0].opaAuth.modules[1]: ConfigMap gloo-system.gone not found",
            "spec.configs[0].opaAuth.modules[2]: ConfigMap \"one\" needs its namespace (Gloo looks a reference without one up in the namespace \"\")",
            "spec.configs[0].opaAuth.modules[3]: policy.rego is a duplicate module (ConfigMap gloo-system.two and ConfigMap gloo-system.one both hold it)",
            "spec.configs[1].opaAuth.query: no query provided",
        ],
        &[],
    );
    assert!(configs.is_empty(), "{configs:?}");
}

#[test]
fn a_config_map_edit_changes_the_servers_opa_config_and_its_loss_keeps_the_last_good_one() {
    let opa = auth_config(
        "opa",
        "configs:\n- opaAuth:\n    modules: [{name: policy, namespace: gloo-system}]\n    query: data.test.allow == true\n",
    );
    let mut translator = gloo_core::translate::Translator::new();
    let module = |t: &gloo_core::translate::Translation| {
        t.ext_auth_server.configs["gloo-system.opa"]["configs"][0]["opaAuth"]["modules"]["p.rego"]
            .clone()
    };
    let first = translate_with(
        &mut translator,
        &docs(&[
            &opa,
            &config_map("gloo-system", "policy", "{p.rego: 'package one'}"),
        ]),
    );
    assert_eq!(module(&first), "package one");
    let second = translate_with(
        &mut translator,
        &docs(&[
            &opa,
            &config_map("gloo-system", "policy", "{p.rego: 'package two'}"),
        ]),
    );
    assert_eq!(module(&second), "package two");
    // The ConfigMap goes: Rejected, and the server keeps the last good config.
    let third = translate_with(&mut translator, &docs(&[&opa]));
    assert_status(
        &third,
        Kind::AuthConfig,
        &gs("opa"),
        Rejected,
        &["spec.configs[0].opaAuth.modules[0]: ConfigMap gloo-system.policy not found"],
        &[],
    );
    assert_eq!(module(&third), "package two");
}
