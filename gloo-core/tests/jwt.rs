//! JWT options translated to stock Envoy's `jwt_authn`: providers named
//! `<virtual host>_<provider>`, one requirement per virtual host (and per route with its own
//! providers), validation policies as `requires_any` lists, per-route configs naming the
//! requirement or disabling the filter; and what gloo refuses. `envoy_validate.rs` hands the
//! same config (tests/data/envoy-jwt) to a real Envoy.

mod common;

use std::path::Path;

use common::*;
use gloo_core::model::Kind;
use serde_json::{json, Value};

fn translated() -> gloo_core::translate::Translation {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/envoy-jwt");
    translate(&read_yaml_dir(&dir))
}

fn filters(resources: &Value) -> Vec<Value> {
    resources["listeners"][0]["filterChains"][0]["filters"][0]["typedConfig"]["httpFilters"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn providers_requirements_and_route_overrides_follow_gloo() {
    let t = translated();
    assert_no_rejections(&t);
    let resources = proxy(&t).to_json().expect("json");
    let filters = filters(&resources);
    let names: Vec<&str> = filters.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "envoy.filters.http.jwt_authn",
            "envoy.filters.http.jwt_authn.after_ext_auth",
            // Gloo's default gRPC-Web filter, after auth.
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.router"
        ]
    );
    let before = &filters[0]["typedConfig"];
    let jwk = before["providers"]["gloo-system_api_local"]["localJwks"]["inlineString"]
        .as_str()
        .expect("local jwks")
        .to_string();
    // One JWK is wrapped into a key set.
    let set: Value = serde_json::from_str(&jwk).expect("JSON");
    assert_eq!(set["keys"][0]["kid"], "k1");
    assert_eq!(
        before["providers"]["gloo-system_api_local"],
        json!({
            "issuer": "https://issuer.example",
            "audiences": ["api"],
            "localJwks": {"inlineString": jwk},
            "forward": true,
            "fromHeaders": [{"name": "x-jwt", "valuePrefix": "Bearer "}],
            "fromParams": ["token"],
            "payloadInMetadata": "principal",
            "clockSkewSeconds": 30,
            "claimToHeaders": [{"headerName": "x-sub", "claimName": "sub"}],
        })
    );
    assert_eq!(
        before["providers"]["gloo-system_api_remote"],
        json!({
            "issuer": "https://remote.example",
            "remoteJwks": {
                "httpUri": {"uri": "http://127.0.0.1:9001/jwks", "cluster": "jwks_gloo-system", "timeout": "5s"},
                "cacheDuration": "60s",
            },
            "payloadInMetadata": "principal",
        })
    );
    // ALLOW_MISSING: either provider, or no token at all.
    assert_eq!(
        before["requirementMap"],
        json!({"gloo-system_api": {"requiresAny": {"requirements": [
            {"providerName": "gloo-system_api_local"},
            {"providerName": "gloo-system_api_remote"},
            {"allowMissing": {}},
        ]}}})
    );
    let after = &filters[1]["typedConfig"];
    assert_eq!(
        after["requirementMap"],
        json!({"gloo-system_api-route-1": {"requiresAny": {"requirements": [
            {"providerName": "gloo-system_api-route-1_admins"},
            {"providerName": "gloo-system_api-route-1_pem"},
        ]}}})
    );
    // A PEM public key is converted to a JWK (the one the JWKS provider lists).
    let pem_jwks: Value = serde_json::from_str(
        after["providers"]["gloo-system_api-route-1_pem"]["localJwks"]["inlineString"]
            .as_str()
            .expect("local jwks"),
    )
    .expect("JSON");
    assert_eq!(pem_jwks["keys"][0]["n"], set["keys"][0]["n"]);
    assert_eq!(pem_jwks["keys"][0]["kty"], "RSA");

    let rc = &resources["routes"][0];
    let vh = &rc["virtualHosts"][0];
    assert_eq!(
        vh["typedPerFilterConfig"]["envoy.filters.http.jwt_authn"]["requirementName"],
        "gloo-system_api"
    );
    let routes = vh["routes"].as_array().expect("routes");
    assert_eq!(
        routes[0]["typedPerFilterConfig"]["envoy.filters.http.jwt_authn"],
        json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig", "disabled": true})
    );
    assert_eq!(
        routes[1]["typedPerFilterConfig"]["envoy.filters.http.jwt_authn.after_ext_auth"]
            ["requirementName"],
        "gloo-system_api-route-1"
    );
    assert!(
        routes[2].get("typedPerFilterConfig").is_none(),
        "{}",
        routes[2]
    );
    // The JWKS upstream gets its cluster.
    let clusters: Vec<&str> = resources["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(clusters.contains(&"jwks_gloo-system"), "{clusters:?}");
}

#[test]
fn listeners_without_jwt_get_no_jwt_filter() {
    let t = translate(&docs(&[
        &static_upstream("app", 9000),
        &vs(
            "plain",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: app}}}\n",
        ),
    ]));
    let resources = proxy(&t).to_json().expect("json");
    let names: Vec<String> = filters(&resources)
        .iter()
        .filter_map(|f| f["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        names,
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"]
    );
}

#[test]
fn providers_gloo_cannot_verify_with_are_rejected_naming_the_field() {
    let t = translate(&docs(&[
        &static_upstream("app", 9000),
        &vs(
            "bad",
            "
            domains: ['*']
            options:
              jwt:
                providers:
                  nokeys: {issuer: a}
                  pem: {jwks: {local: {key: \"-----BEGIN PUBLIC KEY-----\\nMCow\\n-----END PUBLIC KEY-----\"}}}
                  notjson: {jwks: {local: {key: 'hello'}}}
                  nourl: {jwks: {remote: {upstreamRef: {name: app}}}}
                  relative: {jwks: {remote: {url: /jwks}}}
                  claims:
                    jwks: {local: {key: '{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}'}}
                    claimsToHeaders: [{claim: sub}]
            routes:
            - matchers: [{prefix: /}]
              options:
                jwtProvidersStaged: {beforeExtAuth: {providers: {}}}
              routeAction: {single: {upstream: {name: app}}}
            ",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("bad"),
        Rejected,
        &[
            "spec.virtualHost.options.jwt.providers.claims.claimsToHeaders[0].header: required",
            "spec.virtualHost.options.jwt.providers.nokeys.jwks: set one of remote, local",
            "spec.virtualHost.options.jwt.providers.notjson.jwks.local.key: not a JWK or JWKS: expected value at line 1 column 1",
            "spec.virtualHost.options.jwt.providers.nourl.jwks.remote.url: required",
            "spec.virtualHost.options.jwt.providers.pem.jwks.local.key: SubjectPublicKeyInfo: the key's DER is truncated",
            "spec.virtualHost.options.jwt.providers.relative.jwks.remote.url: \"/jwks\" is not an absolute URL",
            "spec.virtualHost.options.jwt.providers.relative.jwks.remote.upstreamRef: required",
            "spec.virtualHost.routes[0].options.jwtProvidersStaged.beforeExtAuth.providers: at least one provider is required",
        ],
        &[],
    );
    assert!(t.proxies.is_empty() || vhost_names(route_config(&t)).is_empty());
}
