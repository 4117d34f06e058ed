//! The `VirtualService` resource: Gloo's `gateway/api/v1/virtual_service.proto`
//! (`VirtualService`, `VirtualHost`). Routes are in [`crate::model::routing`].
//!
//! Reading a virtual service with the crate's loader and looking at its virtual host and TLS:
//!
//! ```
//! use gloo_core::load::{parse_str, Format};
//! use gloo_core::model::ssl::SslSecretsRef;
//! use gloo_core::model::{Resource, ResourceRef};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//!
//! let yaml = r#"
//! apiVersion: gateway.solo.io/v1
//! kind: VirtualService
//! metadata:
//!   name: petstore
//!   namespace: gloo-system
//! spec:
//!   displayName: Pet store
//!   sslConfig:
//!     secretRef:
//!       name: petstore-tls
//!       namespace: gloo-system
//!   virtualHost:
//!     domains:
//!     - petstore.example.com
//!     - '*.petstore.example.com'
//!     routes:
//!     - matchers:
//!       - prefix: /
//!       routeAction:
//!         single:
//!           upstream:
//!             name: default-petstore-8080
//!             namespace: gloo-system
//!     optionsConfigRefs:
//!       delegateOptions:
//!       - name: shared-cors
//!         namespace: gloo-system
//! "#;
//! let parsed = parse_str(yaml, "petstore.yaml", Format::Yaml);
//! assert!(parsed.is_ok(), "{:?}", parsed.errors);
//! let Resource::VirtualService(vs) = &parsed.resources[0].resource else {
//!     panic!("expected a VirtualService");
//! };
//! assert_eq!(vs.to_ref(), ResourceRef::new("gloo-system", "petstore"));
//! assert_eq!(vs.spec.display_name, "Pet store");
//!
//! let host = vs.spec.virtual_host.as_ref().ok_or("no virtualHost")?;
//! assert_eq!(host.domains, ["petstore.example.com", "*.petstore.example.com"]);
//! assert_eq!(host.routes.len(), 1);
//! let refs = host.options_config_refs.as_ref().ok_or("no optionsConfigRefs")?;
//! assert_eq!(refs.delegate_options, [ResourceRef::new("gloo-system", "shared-cors")]);
//!
//! // With an `sslConfig`, only `ssl: true` Gateways serve this virtual service.
//! let tls = vs.spec.ssl_config.as_ref().ok_or("no sslConfig")?;
//! let secret = ResourceRef::new("gloo-system", "petstore-tls");
//! assert_eq!(tls.ssl_secrets()?, Some(SslSecretsRef::SecretRef(&secret)));
//! # Ok(())
//! # }
//! ```

use serde::{Deserialize, Serialize};

use crate::model::options::VirtualHostOptions;
use crate::model::routing::{DelegateOptionsRefs, Route};
use crate::model::ssl::SslConfig;

/// A virtual service: a set of domains, their routes, and optional TLS
/// (`gateway.solo.io.VirtualService`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualServiceSpec {
    /// The virtual host: domains, routes and options.
    #[serde(
        alias = "virtual_host",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_host: Option<VirtualHost>,
    /// TLS termination settings; a virtual service with TLS is served by `ssl: true` gateways.
    #[serde(alias = "ssl_config", default, skip_serializing_if = "Option::is_none")]
    pub ssl_config: Option<SslConfig>,
    /// Display name (for UIs; not used in routing).
    #[serde(
        alias = "display_name",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub display_name: String,
}

/// Domains and the ordered routes serving them (`gateway.solo.io.VirtualHost`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualHost {
    /// Host names (with optional `*` wildcards, `*` alone matches all) this virtual host serves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Routes, matched in order.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "crate::model::shrunk_vec"
    )]
    pub routes: Vec<Route>,
    /// Options applying to all routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<VirtualHostOptions>,
    /// `external_options_config` oneof: `VirtualHostOption` resources to take options from
    /// (`options` here override them; earlier ones override later ones).
    #[serde(
        alias = "options_config_refs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub options_config_refs: Option<DelegateOptionsRefs>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::routing::{
        DelegateTarget, DestinationTarget, PathMatcher, RedirectPath, RouteActionRef,
        RouteDestination,
    };
    use crate::model::{Duration, ResourceRef};

    fn spec(doc: &str) -> VirtualServiceSpec {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(doc).unwrap();
        serde_yaml_ng::from_value(v["spec"].clone()).unwrap()
    }

    fn round_trip(s: &VirtualServiceSpec) {
        let json = serde_json::to_string(s).unwrap();
        let back: VirtualServiceSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(s, &back);
    }

    fn routes(s: &VirtualServiceSpec) -> &[Route] {
        &s.virtual_host.as_ref().unwrap().routes
    }

    // docs/content/guides/traffic_management/destination_selection/header_matching/virtual-service.yaml
    const HEADER_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-header
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - headers:
            - name: header1
              value: value1
            - name: header2
            - name: header3
              regex: true
              value: "[a-z]{1}"
            - name: header4
              invertMatch: true
            - name: header5
              value: value5
              invertMatch: true
           prefix: /
        routeAction:
          single:
            upstream:
              name: json-upstream
              namespace: gloo-system
        options:
          autoHostRewrite: true
"#;

    #[test]
    fn parses_header_matchers() {
        let vs = spec(HEADER_VS);
        assert_eq!(vs.virtual_host.as_ref().unwrap().domains, vec!["foo"]);
        let route = &routes(&vs)[0];
        let m = &route.matchers[0];
        assert_eq!(m.path().unwrap(), Some(PathMatcher::Prefix("/")));
        assert_eq!(m.headers.len(), 5);
        assert_eq!(m.headers[1].name, "header2");
        assert_eq!(m.headers[1].value, "");
        assert!(m.headers[2].regex);
        assert!(m.headers[3].invert_match);
        let Some(RouteActionRef::Route(action)) = route.action().unwrap() else {
            panic!("expected a route action");
        };
        let Some(RouteDestination::Single(dest)) = action.destination().unwrap() else {
            panic!("expected a single destination");
        };
        assert_eq!(
            dest.target().unwrap(),
            Some(DestinationTarget::Upstream(&ResourceRef::new(
                "gloo-system",
                "json-upstream"
            )))
        );
        assert_eq!(
            route.options.as_ref().unwrap().auto_host_rewrite,
            Some(true)
        );
        round_trip(&vs);
    }

    // docs/content/guides/traffic_management/destination_selection/query_parameter_matching/virtual-service.yaml
    const QUERY_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-query-parameter
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - queryParameters:
            - name: param1
              value: value1
            - name: param2
            - name: param3
              regex: true
              value: "[a-z]{1}"
           prefix: /
        routeAction:
          single:
            upstream:
              name: json-upstream
              namespace: gloo-system
        options:
          autoHostRewrite: true
"#;

    // docs/content/guides/traffic_management/destination_selection/http_method_matching/test-post-vs.yaml
    const METHOD_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-post
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - methods:
            - POST
           prefix: /
        routeAction:
          single:
            upstream:
              name: json-upstream
              namespace: gloo-system
        options:
          autoHostRewrite: true
"#;

    // docs/content/guides/traffic_management/destination_selection/path_matching/regex_vs.yaml
    const REGEX_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-regex
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - regex: /[a-z]{5}
        routeAction:
          single:
            upstream:
              name: json-upstream
              namespace: gloo-system
        options:
          autoHostRewrite: true
"#;

    #[test]
    fn parses_query_method_and_regex_matchers() {
        let q = spec(QUERY_VS);
        let m = &routes(&q)[0].matchers[0];
        assert_eq!(m.query_parameters.len(), 3);
        assert_eq!(m.query_parameters[0].value, "value1");
        assert!(m.query_parameters[2].regex);
        round_trip(&q);

        let p = spec(METHOD_VS);
        assert_eq!(routes(&p)[0].matchers[0].methods, vec!["POST"]);
        round_trip(&p);

        let r = spec(REGEX_VS);
        assert_eq!(
            routes(&r)[0].matchers[0].path().unwrap(),
            Some(PathMatcher::Regex("/[a-z]{5}"))
        );
        round_trip(&r);
    }

    // docs/content/guides/traffic_management/destination_types/delegation/_index.md
    const DELEGATING_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: 'example'
  namespace: 'gloo-system'
spec:
  virtualHost:
    domains:
    - 'example.com'
    routes:
    - matchers:
       - prefix: '/a' # delegate ownership of routes for `example.com/a`
      delegateAction:
        ref:
          name: 'a-routes'
          namespace: 'a'
    - matchers:
       - prefix: '/' # delegate ownership of all routes for `example.com`
      delegateAction:
        selector:
          labels:
            domain: example.com
          namespaces:
          - gloo-system
"#;

    #[test]
    fn parses_delegation() {
        let vs = spec(DELEGATING_VS);
        let rs = routes(&vs);
        let Some(RouteActionRef::Delegate(d)) = rs[0].action().unwrap() else {
            panic!("expected a delegate action");
        };
        assert_eq!(
            d.target().unwrap(),
            Some(DelegateTarget::Ref(ResourceRef::new("a", "a-routes")))
        );
        let Some(RouteActionRef::Delegate(d)) = rs[1].action().unwrap() else {
            panic!("expected a delegate action");
        };
        let Some(DelegateTarget::Selector(sel)) = d.target().unwrap() else {
            panic!("expected a selector");
        };
        assert_eq!(sel.labels["domain"], "example.com");
        assert_eq!(sel.namespaces, vec!["gloo-system"]);
        round_trip(&vs);
    }

    // Route options from docs/content/guides/traffic_management/request_processing/:
    // timeout/_index.md (timeout, retries), prefix_rewrite/_index.md, faults/_index.md,
    // shadowing/_index.md, regex_rewrite/_index.md, and docs/content/guides/security/cors/_index.md.
    const OPTIONS_VS: &str = r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: 'default'
  namespace: 'gloo-system'
spec:
  virtualHost:
    domains:
    - '*'
    options:
      cors:
        allowCredentials: true
        allowHeaders:
        - origin
        allowMethods:
        - GET
        - POST
        - OPTIONS
        allowOrigin:
        - https://example.com
        allowOriginRegex:
        - https://[a-zA-Z0-9]*\.example\.com
        exposeHeaders:
        - origin
        maxAge: 1d
    routes:
    - matchers:
       - prefix: '/petstore'
      routeAction:
        single:
          upstream:
            name: 'default-petstore-8080'
            namespace: 'gloo-system'
      options:
        timeout: '20s'
        retries:
          retryOn: 'connect-failure'
          numRetries: 3
          perTryTimeout: '5s'
        faults:
          abort:
            percentage: 2.5
            httpStatus: 503
          delay:
            percentage: 5.3
            fixedDelay: '5s'
        shadowing:
          upstream:
            name: 'petstore-v2'
            namespace: 'gloo-system'
          percentage: 100
    - matchers:
       - prefix: '/bar'
      routeAction:
        single:
          upstream:
            name: 'default-petstore-8080'
            namespace: 'gloo-system'
      options:
        prefixRewrite: '/api/pets'
    - matchers:
       - prefix: '/pre'
      routeAction:
        single:
          upstream:
            name: 'default-petstore-8080'
            namespace: 'gloo-system'
      options:
        regexRewrite:
          pattern:
            regex: '^/pre/([^/]+)(/.*)$'
          substitution: '\2/swap/\1'
status: {}
"#;

    #[test]
    fn parses_route_and_virtual_host_options() {
        let vs = spec(OPTIONS_VS);
        let vh = vs.virtual_host.as_ref().unwrap();
        let cors = vh.options.as_ref().unwrap().cors.as_ref().unwrap();
        assert_eq!(cors.max_age, "1d");
        let rs = &vh.routes;
        let o = rs[0].options.as_ref().unwrap();
        assert_eq!(o.timeout, Some(Duration::from_secs(20)));
        let retries = o.retries.as_ref().unwrap();
        assert_eq!(retries.num_retries, Some(3));
        assert_eq!(retries.per_try_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            o.faults
                .as_ref()
                .unwrap()
                .abort
                .as_ref()
                .unwrap()
                .http_status,
            503
        );
        let shadow = o.shadowing.as_ref().unwrap();
        assert_eq!(shadow.upstream.as_ref().unwrap().name, "petstore-v2");
        assert_eq!(shadow.percentage, 100.0);
        assert_eq!(
            rs[1].options.as_ref().unwrap().prefix_rewrite.as_deref(),
            Some("/api/pets")
        );
        let rr = rs[2]
            .options
            .as_ref()
            .unwrap()
            .regex_rewrite
            .as_ref()
            .unwrap();
        assert_eq!(rr.pattern.as_ref().unwrap().regex, "^/pre/([^/]+)(/.*)$");
        assert_eq!(rr.substitution, r"\2/swap/\1");
        round_trip(&vs);
    }

    // docs/content/guides/traffic_management/request_processing/redirect_action/test-redirect-vs.yaml
    // and direct_response_action/test-direct-response-vs.yaml
    #[test]
    fn parses_redirect_and_direct_response() {
        let vs = spec(
            r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: test-redirect
  namespace: gloo-system
spec:
  virtualHost:
    domains:
      - 'foo'
    routes:
      - matchers:
         - prefix: /
        redirectAction:
          hostRedirect: "google.com"
      - matchers:
         - prefix: /
        directResponseAction:
          status: 200
          body: "Hello, world!"
      - matchers:
         - exact: /old
        redirectAction:
          pathRedirect: /new
          responseCode: PERMANENT_REDIRECT
          httpsRedirect: true
"#,
        );
        let rs = routes(&vs);
        let Some(RouteActionRef::Redirect(r)) = rs[0].action().unwrap() else {
            panic!("expected a redirect");
        };
        assert_eq!(r.host_redirect, "google.com");
        assert_eq!(r.response_code.status(), 301);
        assert_eq!(r.path_rewrite().unwrap(), None);
        let Some(RouteActionRef::DirectResponse(d)) = rs[1].action().unwrap() else {
            panic!("expected a direct response");
        };
        assert_eq!((d.status, d.body.as_str()), (200, "Hello, world!"));
        let Some(RouteActionRef::Redirect(r)) = rs[2].action().unwrap() else {
            panic!("expected a redirect");
        };
        assert_eq!(r.path_rewrite().unwrap(), Some(RedirectPath::Path("/new")));
        assert_eq!(r.response_code.status(), 308);
        assert!(r.https_redirect);
        round_trip(&vs);
    }

    #[test]
    fn loads_through_resource_envelope() {
        use crate::model::{Kind, Resource};
        let de = serde_yaml_ng::Deserializer::from_str(OPTIONS_VS);
        let res = Resource::deserialize_envelope(Kind::VirtualService, de).unwrap();
        let Resource::VirtualService(vs) = res else {
            panic!("expected a virtual service");
        };
        assert_eq!(vs.metadata.name, "default");
        assert_eq!(vs.spec, spec(OPTIONS_VS));
    }

    #[test]
    fn two_actions_is_an_error() {
        let route: Route = serde_yaml_ng::from_str(
            "routeAction: {single: {upstream: {name: a}}}\nredirectAction: {hostRedirect: b}",
        )
        .unwrap();
        let err = route.action().unwrap_err();
        assert_eq!(
            err.to_string(),
            "only one of routeAction, redirectAction may be set, found both (oneof `action`)"
        );
    }

    #[test]
    fn options_config_refs_parse() {
        // gateway/api/v1/external_options.proto
        let vs = spec(
            r#"
apiVersion: gateway.solo.io/v1
kind: VirtualService
metadata:
  name: http
  namespace: gloo-system
spec:
  virtualHost:
    domains:
    - '*'
    options:
      headerManipulation:
        requestHeadersToRemove: ["header-from-vhost"]
    optionsConfigRefs:
      delegateOptions:
        - name: virtualhost-external-options-1
          namespace: opt-namespace
        - name: virtualhost-external-options-2
          namespace: opt-namespace
"#,
        );
        let refs = vs
            .virtual_host
            .as_ref()
            .unwrap()
            .options_config_refs
            .as_ref()
            .unwrap();
        assert_eq!(
            refs.delegate_options[1].name,
            "virtualhost-external-options-2"
        );
        round_trip(&vs);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(
            "virtualHost:\n  domains: ['*']\n  routes:\n  - matchers: [{prefix: /}]\n    routeActions: {}",
        )
        .unwrap();
        let err = serde_yaml_ng::from_value::<VirtualServiceSpec>(v).unwrap_err();
        assert!(err.to_string().contains("routeActions"), "{err}");
        let err = serde_yaml_ng::from_str::<VirtualServiceSpec>("virtualHosts: {}").unwrap_err();
        assert!(err.to_string().contains("virtualHosts"), "{err}");
    }
}
