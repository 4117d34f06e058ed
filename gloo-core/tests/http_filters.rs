//! A Gateway's `healthCheck`, `gzip` and `buffer` options become Envoy's health check,
//! compressor (gzip library) and buffer filters, and `bufferPerRoute` on virtual hosts, routes
//! and weighted destinations the buffer filter's per-route config, as Gloo's `healthcheck`,
//! `gzip` and `buffer` plugins translate them (in the non-deprecated fields Envoy 1.40 does
//! not warn about), in Gloo's filter stage order. What Gloo or Envoy refuses rejects the
//! resource, naming the field; a buffer limit on a Gateway without the buffer filter is served
//! as Gloo serves it, with a warning that it does nothing there. Envoy's gRPC-Web filter is on
//! every HTTP listener, as Gloo's `grpcweb` plugin puts it, unless the listener's `grpcWeb` or
//! Settings (`gloo.disableGrpcWeb`, else `gloo.removeUnusedFilters`) leave it off. A Gateway's
//! `router` option sets the router filter's `suppress_envoy_headers` and `dynamic_stats`.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::translate::{
    Translator, BUFFER_FILTER, COMPRESSOR_FILTER, GRPC_WEB_FILTER, GZIP_COMPRESSOR,
    HEALTH_CHECK_FILTER,
};
use serde_json::{json, Value};

const BUFFER: &str = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer";
const BUFFER_PER_ROUTE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute";

/// The Gateway `gloo-system.gateway-proxy` on 8080 with `options` (a YAML block) as its
/// `httpGateway.options`.
fn gateway_with(options: &str) -> String {
    gateway(
        "{name: gateway-proxy, namespace: gloo-system}",
        &format!(
            "bindAddress: '::'\nbindPort: 8080\nhttpGateway:\n  options:\n{}",
            reindent(options, 4)
        ),
    )
}

/// The virtual service `default` routing everything to `up`.
fn default_vs() -> String {
    vs(
        "default",
        "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
    )
}

/// The HTTP filter named `name` of the listener on 8080.
fn filter(t: &gloo_core::translate::Translation, name: &str) -> Value {
    http_filters(t)
        .into_iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no {name} filter in {:?}", filter_names(t)))
}

fn per_route(max_request_bytes: u64) -> Value {
    json!({"@type": BUFFER_PER_ROUTE, "buffer": {"maxRequestBytes": max_request_bytes}})
}

fn per_route_disabled() -> Value {
    json!({"@type": BUFFER_PER_ROUTE, "disabled": true})
}

/// The route named `<vs>-route-<i>` of virtual host `gloo-system_<vs>`, as JSON.
fn route_json(t: &gloo_core::translate::Translation, vs: &str, i: usize) -> Value {
    let vhost = vhost_json(t, vs);
    vhost["routes"]
        .as_array()
        .and_then(|rs| {
            rs.iter()
                .find(|r| r["name"] == format!("gloo-system_{vs}-route-{i}"))
                .cloned()
        })
        .unwrap_or_else(|| panic!("no route {i} in {vhost:#}"))
}

// docs/content/guides/traffic_management/request_processing/health_checks/_index.md
#[test]
fn a_health_check_is_envoys_filter_answering_one_exact_path() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("healthCheck:\n  path: /any-path-you-want\n"),
        &default_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(HEALTH_CHECK_FILTER, "envoy.filters.http.health_check");
    // Gloo's pass_through_mode false and `:path` matcher, its exact match written as a
    // `string_match` (Envoy 1.40 warns about `exact_match`).
    assert_eq!(
        filter(&t, HEALTH_CHECK_FILTER),
        json!({
            "name": "envoy.filters.http.health_check",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
                "passThroughMode": false,
                "headers": [{"name": ":path", "stringMatch": {"exact": "/any-path-you-want"}}],
            },
        })
    );
    // Without the option, no filter (only Gloo's default gRPC-Web filter and the router).
    let plain = translate(&docs(&[&up(), &default_vs()]));
    assert_eq!(
        filter_names(&plain),
        ["envoy.filters.http.grpc_web", "envoy.filters.http.router"],
        "{}",
        plain.reports.to_text()
    );
}

#[test]
fn gzip_is_the_compressor_filter_with_the_gzip_library_and_its_response_settings() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with(
            "gzip:
  memoryLevel: 3
  contentLength: 100
  compressionLevel: SPEED
  compressionStrategy: RLE
  contentType: [text/html, application/json]
  disableOnEtagHeader: true
  removeAcceptEncodingHeader: true
  windowBits: 10
",
        ),
        &default_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let compressor = filter(&t, COMPRESSOR_FILTER);
    assert_eq!(
        compressor,
        json!({
            "name": "envoy.filters.http.compressor",
            "typedConfig": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
                "compressorLibrary": {
                    "name": GZIP_COMPRESSOR,
                    "typedConfig": {
                        "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
                        "memoryLevel": 3,
                        "compressionLevel": "BEST_SPEED",
                        "compressionStrategy": "RLE",
                        "windowBits": 10,
                    },
                },
                // Gloo's deprecated top-level fields, in their replacements: the media types
                // compared as Envoy compares the deprecated list (case-insensitively).
                "responseDirectionConfig": {
                    "commonConfig": {
                        "minContentLength": 100,
                        "contentTypeMatcher": [
                            {"exact": "text/html", "ignoreCase": true},
                            {"exact": "application/json", "ignoreCase": true},
                        ],
                    },
                    "disableOnEtagHeader": true,
                    "removeAcceptEncodingHeader": true,
                },
            },
        })
    );
    assert_eq!(GZIP_COMPRESSOR, "envoy.compression.gzip.compressor");
}

// docs/content/installation/advanced_configuration/gzip.md
#[test]
fn gzip_of_the_guide_sets_only_what_it_names() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("gzip:\n  compressionLevel: BEST\n  contentType:\n  - text/plain\n"),
        &default_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    let config = &filter(&t, COMPRESSOR_FILTER)["typedConfig"];
    // BEST is zlib's level 9 (Envoy's BEST_COMPRESSION, an alias of COMPRESSION_LEVEL_9).
    assert_eq!(
        config["compressorLibrary"]["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip",
            "compressionLevel": "COMPRESSION_LEVEL_9",
        })
    );
    assert_eq!(
        config["responseDirectionConfig"],
        json!({"commonConfig": {"contentTypeMatcher": [{"exact": "text/plain", "ignoreCase": true}]}})
    );
    // Nothing in the fields Envoy 1.40 warns about.
    for deprecated in [
        "contentLength",
        "contentType",
        "disableOnEtagHeader",
        "removeAcceptEncodingHeader",
        "runtimeEnabled",
    ] {
        assert!(config.get(deprecated).is_none(), "{deprecated}: {config:#}");
    }
    // An empty gzip option is the library with Envoy's defaults, nothing else.
    let t = translate(&docs(&[&up(), &gateway_with("gzip: {}\n"), &default_vs()]));
    assert_eq!(
        filter(&t, COMPRESSOR_FILTER)["typedConfig"],
        json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.http.compressor.v3.Compressor",
            "compressorLibrary": {
                "name": "envoy.compression.gzip.compressor",
                "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.compression.gzip.compressor.v3.Gzip"},
            },
        })
    );
}

#[test]
fn buffer_is_the_buffer_filter_just_before_the_router() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("buffer:\n  maxRequestBytes: 1048576\n"),
        &default_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(BUFFER_FILTER, "envoy.filters.http.buffer");
    assert_eq!(
        http_filters(&t),
        [
            grpc_web_json(),
            json!({
                "name": "envoy.filters.http.buffer",
                "typedConfig": {"@type": BUFFER, "maxRequestBytes": 1048576},
            }),
            json!({
                "name": "envoy.filters.http.router",
                "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }),
        ]
    );
}

/// Gloo orders filters by stage, then by name within a stage: the compressor
/// (`DuringStage(FaultStage)`) sorts before the fault filter, so it is the first filter on the
/// request path and the last on the response path; gRPC-Web and the health check
/// (`AfterStage(AuthZStage)`, in that name order) follow auth and precede the regular
/// transformations of their stage; the buffer (`DuringStage(RouteStage)`) is the last before
/// the router.
#[test]
fn the_filters_take_gloos_stage_order() {
    let auth_server = resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: extauth, namespace: gloo-system}",
        "static: {hosts: [{addr: 10.0.0.9, port: 8083}]}",
    );
    let auth_config = resource(
        "enterprise.gloo.solo.io/v1",
        "AuthConfig",
        "{name: basic, namespace: gloo-system}",
        "configs:\n- basicAuth:\n    apr:\n      users:\n        user: {salt: TYiryv0/, hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1}\n",
    );
    let t = translate(&docs(&[
        &up(),
        &auth_server,
        &auth_config,
        &gateway_with(
            "healthCheck: {path: /healthz}
buffer: {maxRequestBytes: 65536}
gzip: {compressionLevel: BEST}
extauth:
  extauthzServerRef: {name: extauth, namespace: gloo-system}
",
        ),
        &vs_with_options(
            "shop",
            "*",
            "cors: {allowOrigin: ['https://a.example']}
extauth: {configRef: {name: basic, namespace: gloo-system}}
",
            "faults: {abort: {percentage: 1, httpStatus: 503}}
stagedTransformations:
  early: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-e: {text: e}}}}}]}
  regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-r: {text: r}}}}}]}
",
        ),
    ]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.compressor",
            "envoy.filters.http.fault",
            "io.solo.transformation",
            "envoy.filters.http.cors",
            "io.solo.filters.http.sanitize",
            "envoy.filters.http.ext_authz",
            "envoy.filters.http.grpc_web",
            "envoy.filters.http.health_check",
            "io.solo.transformation",
            "envoy.filters.http.buffer",
            "envoy.filters.http.router",
        ]
    );

    // After AWS Lambda (`OutAuthStage`, with its request transformation just before it): the
    // buffer holds the request the Lambda filter has signed.
    let lambda = docs(&[
        "apiVersion: v1\nkind: Secret\nmetadata: {name: aws-creds, namespace: gloo-system}\nstringData:\n  aws_access_key_id: AKIDEXAMPLE\n  aws_secret_access_key: s3cr3t\n",
        &resource(
            "gloo.solo.io/v1",
            "Upstream",
            "{name: lambda, namespace: gloo-system}",
            "aws:\n  region: us-east-1\n  secretRef: {name: aws-creds, namespace: gloo-system}\n  lambdaFunctions:\n  - {logicalName: echo, lambdaFunctionName: echo, qualifier: $LATEST}\n",
        ),
        &gateway_with("buffer: {maxRequestBytes: 65536}\n"),
        &vs(
            "fn",
            "domains: ['*']\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: lambda, namespace: gloo-system}, destinationSpec: {aws: {logicalName: echo, requestTransformation: true}}}}\n",
        ),
    ]);
    let t = translate(&lambda);
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [
            "envoy.filters.http.grpc_web",
            "io.solo.transformation",
            "io.solo.aws_lambda",
            "envoy.filters.http.buffer",
            "envoy.filters.http.router",
        ]
    );
}

/// `bufferPerRoute` on a virtual host, routes and weighted destinations (of a route and of an
/// UpstreamGroup), in both forms, as Gloo's ProcessVirtualHost / ProcessRoute /
/// ProcessWeightedDestination set them.
#[test]
fn buffer_per_route_configures_the_filter_where_it_is_set() {
    let group = resource(
        "gloo.solo.io/v1",
        "UpstreamGroup",
        "{name: group, namespace: gloo-system}",
        "destinations:
- weight: 1
  destination: {upstream: {name: up, namespace: gloo-system}}
  options: {bufferPerRoute: {disabled: true}}
- weight: 1
  destination: {upstream: {name: other, namespace: gloo-system}}
",
    );
    let t = translate(&docs(&[
        &up(),
        &static_upstream("other", 9090),
        &group,
        &gateway_with("buffer: {maxRequestBytes: 65536}\n"),
        &vs(
            "shop",
            "domains: ['*']
options:
  bufferPerRoute: {disabled: true}
routes:
- matchers: [{prefix: /upload}]
  options:
    bufferPerRoute: {buffer: {maxRequestBytes: 10485760}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
- matchers: [{prefix: /split}]
  routeAction:
    multi:
      destinations:
      - weight: 1
        destination: {upstream: {name: up, namespace: gloo-system}}
        options: {bufferPerRoute: {buffer: {maxRequestBytes: 2048}}}
      - weight: 1
        destination: {upstream: {name: other, namespace: gloo-system}}
- matchers: [{prefix: /group}]
  routeAction: {upstreamGroup: {name: group, namespace: gloo-system}}
- matchers: [{prefix: /off}]
  options:
    bufferPerRoute: {disabled: true}
  directResponseAction: {status: 200}
- matchers: [{prefix: /}]
  options:
    bufferPerRoute: {disabled: false}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
        ),
    ]));
    assert_no_rejections(&t);
    assert_status(&t, Kind::VirtualService, &gs("shop"), Accepted, &[], &[]);
    let vhost = vhost_json(&t, "shop");
    assert_eq!(
        vhost["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route_disabled()})
    );
    assert_eq!(
        route_json(&t, "shop", 0)["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route(10485760)})
    );
    let split = route_json(&t, "shop", 1);
    assert!(split.get("typedPerFilterConfig").is_none(), "{split:#}");
    let clusters = &split["route"]["weightedClusters"]["clusters"];
    assert_eq!(
        clusters[0]["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route(2048)})
    );
    assert!(
        clusters[1].get("typedPerFilterConfig").is_none(),
        "{split:#}"
    );
    let group = &route_json(&t, "shop", 2)["route"]["weightedClusters"]["clusters"];
    assert_eq!(
        group[0]["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route_disabled()})
    );
    assert!(group[1].get("typedPerFilterConfig").is_none(), "{group:#}");
    // On any action, as in Gloo.
    assert_eq!(
        route_json(&t, "shop", 3)["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route_disabled()})
    );
    // `disabled: false` sets nothing, as in Gloo (Envoy would refuse it).
    let last = route_json(&t, "shop", 4);
    assert!(last.get("typedPerFilterConfig").is_none(), "{last:#}");
}

/// Gloo emits a route's buffer limit whatever its Gateway, but Envoy applies it only where the
/// listener has the buffer filter: gloo emits it too, and warns on the resource that sets it
/// (the VirtualService, the RouteTable of a delegated route, the UpstreamGroup of a weighted
/// destination) for each Gateway without `buffer` that serves it. `disabled` needs no filter
/// to be true, so it is not warned about.
#[test]
fn a_buffer_limit_on_a_gateway_without_the_buffer_filter_is_served_with_a_warning() {
    let group = resource(
        "gloo.solo.io/v1",
        "UpstreamGroup",
        "{name: group, namespace: gloo-system}",
        "destinations:
- weight: 1
  destination: {upstream: {name: up, namespace: gloo-system}}
  options: {bufferPerRoute: {buffer: {maxRequestBytes: 4096}}}
",
    );
    // The buffering guide's RouteTable (docs/content/guides/traffic_management/buffering).
    let table = rt(
        "{name: petstore, namespace: gloo-system}",
        "routes:
- matchers: [{prefix: /api/pets}]
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
  options:
    prefixRewrite: /
    bufferPerRoute:
      buffer:
        maxRequestBytes: 10485760
",
    );
    let shop = vs(
        "shop",
        "domains: ['*']
options:
  bufferPerRoute: {buffer: {maxRequestBytes: 1024}}
routes:
- matchers: [{prefix: /api}]
  delegateAction: {ref: {name: petstore, namespace: gloo-system}}
- matchers: [{prefix: /split}]
  routeAction:
    multi:
      destinations:
      - weight: 1
        destination: {upstream: {name: up, namespace: gloo-system}}
        options: {bufferPerRoute: {buffer: {maxRequestBytes: 2048}}}
- matchers: [{prefix: /group}]
  routeAction: {upstreamGroup: {name: group, namespace: gloo-system}}
- matchers: [{prefix: /off}]
  options: {bufferPerRoute: {disabled: true}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
    );
    let plain = gateway(
        "{name: gateway-proxy, namespace: gloo-system}",
        "bindAddress: '::'\nbindPort: 8080\nhttpGateway: {}\n",
    );
    let buffered = gateway(
        "{name: buffered, namespace: gloo-system}",
        "bindAddress: '::'\nbindPort: 8081\nhttpGateway:\n  options:\n    buffer: {maxRequestBytes: 65536}\n",
    );
    let t = translate(&docs(&[&up(), &group, &table, &shop, &plain, &buffered]));
    assert_no_rejections(&t);
    let why = "has no effect on Gateway gloo-system.gateway-proxy, which sets no httpGateway.options.buffer (Envoy applies a route's buffer limit only where the listener has the buffer filter)";
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("shop"),
        Warning,
        &[],
        &[
            &format!("spec.virtualHost.options.bufferPerRoute.buffer: {why}"),
            &format!("spec.virtualHost.routes[1].routeAction.multi.destinations[0].options.bufferPerRoute.buffer: {why}"),
        ],
    );
    assert_status(
        &t,
        Kind::RouteTable,
        &gs("petstore"),
        Warning,
        &[],
        &[&format!(
            "spec.routes[0].options.bufferPerRoute.buffer: {why}"
        )],
    );
    assert_status(
        &t,
        Kind::UpstreamGroup,
        &gs("group"),
        Warning,
        &[],
        &[&format!(
            "spec.destinations[0].options.bufferPerRoute.buffer: {why}"
        )],
    );
    // Emitted all the same, on both Gateways' route configurations.
    let json = proxy_json(&t);
    for name in ["listener-::-8080-routes", "listener-::-8081-routes"] {
        let rc = json["routes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no {name}"));
        let vhost = &rc["virtualHosts"][0];
        assert_eq!(
            vhost["typedPerFilterConfig"],
            json!({BUFFER_FILTER: per_route(1024)}),
            "{name}"
        );
        assert_eq!(
            vhost["routes"][0]["typedPerFilterConfig"],
            json!({BUFFER_FILTER: per_route(10485760)}),
            "{name}"
        );
        assert_eq!(vhost["routes"][0]["route"]["prefixRewrite"], "/", "{name}");
    }
}

#[test]
fn an_inherited_buffer_limit_is_warned_about_where_it_is_served() {
    let shared = resource(
        "gateway.solo.io/v1",
        "RouteOption",
        "{name: big-bodies, namespace: gloo-system}",
        "options: {bufferPerRoute: {buffer: {maxRequestBytes: 8192}}}",
    );
    let t = translate(&docs(&[
        &up(),
        &shared,
        &vs(
            "shop",
            "domains: ['*']
routes:
- matchers: [{prefix: /}]
  optionsConfigRefs: {delegateOptions: [{name: big-bodies, namespace: gloo-system}]}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
        ),
    ]));
    assert_no_rejections(&t);
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("shop"),
        Warning,
        &[],
        &["spec.virtualHost.routes[0].options: bufferPerRoute.buffer (inherited from a RouteOption or a delegating route): has no effect on Gateway gloo-system.gateway-proxy, which sets no httpGateway.options.buffer (Envoy applies a route's buffer limit only where the listener has the buffer filter)"],
    );
    assert_eq!(
        route_json(&t, "shop", 0)["typedPerFilterConfig"],
        json!({BUFFER_FILTER: per_route(8192)})
    );
}

#[test]
fn what_gloo_or_envoy_refuses_on_a_gateway_rejects_it_naming_the_field() {
    for (options, errors) in [
        (
            "healthCheck: {path: ''}\n",
            vec!["spec.httpGateway.options.healthCheck.path: health check path cannot be \"\" (required: the exact path health check requests use)"],
        ),
        (
            "healthCheck: {}\n",
            vec!["spec.httpGateway.options.healthCheck.path: health check path cannot be \"\" (required: the exact path health check requests use)"],
        ),
        (
            "buffer: {maxRequestBytes: 0}\n",
            vec!["spec.httpGateway.options.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"],
        ),
        (
            "buffer: {}\n",
            vec!["spec.httpGateway.options.buffer.maxRequestBytes: required (Envoy's buffer filter needs a limit greater than 0)"],
        ),
        (
            "gzip: {memoryLevel: 10, windowBits: 8}\n",
            vec![
                "spec.httpGateway.options.gzip.memoryLevel: 10 is not between 1 and 9",
                "spec.httpGateway.options.gzip.windowBits: 8 is not between 9 and 15",
            ],
        ),
    ] {
        let t = translate(&docs(&[&up(), &gateway_with(options), &default_vs()]));
        assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Rejected, &errors, &[]);
        // Never accepted: not served at all rather than served without (or with a broken)
        // filter.
        assert!(
            t.proxies
                .get("gateway-proxy")
                .is_none_or(|p| p.listeners.is_empty()),
            "{options}"
        );
    }
    // The same in a hybrid gateway's HTTP chain.
    let t = translate(&docs(&[
        &up(),
        &gateway(
            "{name: hybrid, namespace: gloo-system}",
            "bindAddress: '::'
bindPort: 8080
hybridGateway:
  matchedGateways:
  - matcher: {}
    httpGateway:
      options: {buffer: {maxRequestBytes: 0}}
",
        ),
        &default_vs(),
    ]));
    assert_eq!(
        status(&t, Kind::Gateway, &gs("hybrid")).errors,
        ["spec.hybridGateway.matchedGateways[0].httpGateway.options.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"]
    );
}

#[test]
fn a_gateway_edited_into_an_invalid_buffer_keeps_serving_its_last_good_version() {
    let mut translator = Translator::new();
    let good = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &gateway_with("buffer: {maxRequestBytes: 4096}\n"),
            &default_vs(),
        ]),
    );
    assert_no_rejections(&good);
    let bad = translate_with(
        &mut translator,
        &docs(&[
            &up(),
            &gateway_with("buffer: {maxRequestBytes: 0}\n"),
            &default_vs(),
        ]),
    );
    assert_eq!(
        status(&bad, Kind::Gateway, &gs("gateway-proxy")).state,
        Rejected
    );
    assert_eq!(
        filter(&bad, BUFFER_FILTER)["typedConfig"]["maxRequestBytes"],
        4096
    );
}

#[test]
fn invalid_buffer_per_route_settings_reject_what_sets_them_naming_the_field() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("buffer: {maxRequestBytes: 4096}\n"),
        &vs(
            "zero",
            "domains: [zero.example]
routes:
- matchers: [{prefix: /}]
  options: {bufferPerRoute: {buffer: {maxRequestBytes: 0}}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
        ),
        &vs(
            "both",
            "domains: [both.example]
options: {bufferPerRoute: {disabled: true, buffer: {maxRequestBytes: 1}}}
routes:
- matchers: [{prefix: /}]
  routeAction:
    multi:
      destinations:
      - destination: {upstream: {name: up, namespace: gloo-system}}
        weight: 1
        options: {bufferPerRoute: {buffer: {}}}
",
        ),
        &rt(
            "{name: table, namespace: gloo-system}",
            "routes:
- matchers: [{prefix: /t}]
  options: {bufferPerRoute: {buffer: {maxRequestBytes: 0}}}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
",
        ),
    ]));
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("zero"),
        Rejected,
        &["spec.virtualHost.routes[0].options.bufferPerRoute.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"],
        &[],
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("both"),
        Rejected,
        &[
            "spec.virtualHost.options.bufferPerRoute: only one of disabled, buffer may be set, found both (oneof `override`)",
            "spec.virtualHost.routes[0].routeAction.multi.destinations[0].options.bufferPerRoute.buffer.maxRequestBytes: required (Envoy's buffer filter needs a limit greater than 0)",
        ],
        &[],
    );
    assert_eq!(
        status(&t, Kind::RouteTable, &gs("table")).errors,
        ["spec.routes[0].options.bufferPerRoute.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"]
    );
    // Never accepted, so not served: nothing Envoy would refuse reaches it.
    let json = proxy_json(&t);
    assert!(!json.to_string().contains(BUFFER_PER_ROUTE), "{json:#}");
}

/// Option resources and UpstreamGroups are checked on their own; a rejected RouteOption is
/// not applied, and a rejected UpstreamGroup is not used (its route answers 503), so its
/// invalid setting never reaches Envoy.
#[test]
fn invalid_buffer_per_route_in_option_resources_and_upstream_groups_is_refused() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("buffer: {maxRequestBytes: 4096}\n"),
        &resource(
            "gateway.solo.io/v1",
            "RouteOption",
            "{name: zero, namespace: gloo-system}",
            "options: {bufferPerRoute: {buffer: {maxRequestBytes: 0}}}",
        ),
        &resource(
            "gateway.solo.io/v1",
            "VirtualHostOption",
            "{name: both, namespace: gloo-system}",
            "options: {bufferPerRoute: {disabled: true, buffer: {maxRequestBytes: 1}}}",
        ),
        &resource(
            "gloo.solo.io/v1",
            "UpstreamGroup",
            "{name: group, namespace: gloo-system}",
            "destinations:
- weight: 1
  destination: {upstream: {name: up, namespace: gloo-system}}
  options: {bufferPerRoute: {buffer: {maxRequestBytes: 0}}}
",
        ),
        &vs(
            "shop",
            "domains: ['*']
optionsConfigRefs: {delegateOptions: [{name: both, namespace: gloo-system}]}
routes:
- matchers: [{prefix: /a}]
  optionsConfigRefs: {delegateOptions: [{name: zero, namespace: gloo-system}]}
  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}
- matchers: [{prefix: /b}]
  routeAction: {upstreamGroup: {name: group, namespace: gloo-system}}
",
        ),
    ]));
    assert_eq!(
        status(&t, Kind::RouteOption, &gs("zero")).errors,
        ["spec.options.bufferPerRoute.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"]
    );
    assert_eq!(
        status(&t, Kind::VirtualHostOption, &gs("both")).errors,
        ["spec.options.bufferPerRoute: only one of disabled, buffer may be set, found both (oneof `override`)"]
    );
    assert_eq!(
        status(&t, Kind::UpstreamGroup, &gs("group")).errors,
        ["spec.destinations[0].options.bufferPerRoute.buffer.maxRequestBytes: must be greater than 0 (Envoy refuses a buffer limit of 0)"]
    );
    assert_status(
        &t,
        Kind::VirtualService,
        &gs("shop"),
        Warning,
        &[],
        &[
            "spec.virtualHost.optionsConfigRefs.delegateOptions[0]: VirtualHostOption gloo-system.both is rejected; its options are not applied",
            "spec.virtualHost.routes[0].optionsConfigRefs.delegateOptions[0]: RouteOption gloo-system.zero is rejected; its options are not applied",
            "spec.virtualHost.routes[1].routeAction.upstreamGroup: UpstreamGroup gloo-system.group is rejected; the route answers 503 until it is fixed",
        ],
    );
    let json = proxy_json(&t);
    assert!(!json.to_string().contains(BUFFER_PER_ROUTE), "{json:#}");
}

// ----- gRPC-Web ------------------------------------------------------------------------------

/// Settings `gloo-system.default` with `gloo` (a YAML flow mapping) as its `gloo` options.
fn settings(gloo: &str) -> String {
    resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        &format!("gloo: {gloo}"),
    )
}

/// How many times the listener on 8080 has the gRPC-Web filter.
fn grpc_web_count(t: &gloo_core::translate::Translation) -> usize {
    filter_names(t)
        .iter()
        .filter(|n| *n == GRPC_WEB_FILTER)
        .count()
}

/// The HTTP filter names of every connection manager of the default proxy, by
/// `<listener>/<filter chain>`.
fn connection_managers(t: &gloo_core::translate::Translation) -> Vec<(String, Vec<String>)> {
    let json = proxy_json(t);
    let mut out = Vec::new();
    for listener in json["listeners"].as_array().into_iter().flatten() {
        for chain in listener["filterChains"].as_array().into_iter().flatten() {
            for filter in chain["filters"].as_array().into_iter().flatten() {
                let Some(filters) = filter["typedConfig"]["httpFilters"].as_array() else {
                    continue;
                };
                out.push((
                    format!(
                        "{}/{}",
                        listener["name"].as_str().unwrap_or_default(),
                        chain["name"].as_str().unwrap_or_default()
                    ),
                    filters
                        .iter()
                        .map(|f| f["name"].as_str().unwrap_or_default().to_string())
                        .collect(),
                ));
            }
        }
    }
    out
}

/// Gloo's `grpcweb` plugin puts Envoy's gRPC-Web filter, with an empty config, on every HTTP
/// listener by default.
#[test]
fn grpc_web_is_on_a_default_gateway_once_with_an_empty_config() {
    assert_eq!(GRPC_WEB_FILTER, "envoy.filters.http.grpc_web");
    let t = translate(&docs(&[&up(), &default_vs()]));
    assert_no_rejections(&t);
    assert_eq!(
        filter_names(&t),
        [GRPC_WEB_FILTER, "envoy.filters.http.router"]
    );
    assert_eq!(grpc_web_count(&t), 1);
    assert_eq!(
        filter(&t, GRPC_WEB_FILTER),
        json!({
            "name": "envoy.filters.http.grpc_web",
            "typedConfig": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"},
        })
    );
}

/// `AfterStage(AuthZStage)`, first of its stage by name: after ext auth, immediately before
/// the health check, before the regular transformations and the router.
#[test]
fn grpc_web_follows_auth_and_precedes_the_health_check_and_the_regular_transformations() {
    let auth_server = resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: extauth, namespace: gloo-system}",
        "static: {hosts: [{addr: 10.0.0.9, port: 8083}]}",
    );
    let auth_config = resource(
        "enterprise.gloo.solo.io/v1",
        "AuthConfig",
        "{name: basic, namespace: gloo-system}",
        "configs:\n- basicAuth:\n    apr:\n      users:\n        user: {salt: TYiryv0/, hashedPassword: 8BvzLUO9IfGPGGsPnAgSu1}\n",
    );
    let t = translate(&docs(&[
        &up(),
        &auth_server,
        &auth_config,
        &gateway_with(
            "healthCheck: {path: /healthz}
extauth:
  extauthzServerRef: {name: extauth, namespace: gloo-system}
",
        ),
        &vs_with_options(
            "shop",
            "*",
            "extauth: {configRef: {name: basic, namespace: gloo-system}}\n",
            "stagedTransformations:
  regular: {requestTransforms: [{requestTransformation: {transformationTemplate: {headers: {x-r: {text: r}}}}}]}
",
        ),
    ]));
    assert_no_rejections(&t);
    let names = filter_names(&t);
    let at = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no {name} in {names:?}"))
    };
    assert_eq!(grpc_web_count(&t), 1, "{names:?}");
    let grpc_web = at(GRPC_WEB_FILTER);
    assert!(at("envoy.filters.http.ext_authz") < grpc_web, "{names:?}");
    assert_eq!(at(HEALTH_CHECK_FILTER), grpc_web + 1, "{names:?}");
    assert_eq!(names[grpc_web + 2], "io.solo.transformation", "{names:?}");
    assert_eq!(
        at("envoy.filters.http.router"),
        names.len() - 1,
        "{names:?}"
    );
}

/// Every connection manager gets it: the plain listener, each chain of an SSL listener, and
/// the HTTP chains of a hybrid gateway, each of which decides by its own `grpcWeb`.
#[test]
fn grpc_web_is_on_every_connection_manager_and_each_listener_decides() {
    let ssl_vs = vs(
        "secure",
        "domains: [secure.example.com]\nroutes:\n- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: up, namespace: gloo-system}}}",
    )
    .replace(
        "spec:\n",
        "spec:\n  sslConfig: {sslFiles: {tlsCert: /certs/tls.crt, tlsKey: /certs/tls.key}}\n",
    );
    let hybrid = gateway(
        "{name: hybrid, namespace: gloo-system}",
        "bindAddress: '::'
bindPort: 8090
hybridGateway:
  matchedGateways:
  - matcher:
      sourcePrefixRanges: [{addressPrefix: 10.0.0.0, prefixLen: 8}]
    httpGateway:
      options: {grpcWeb: {disable: true}}
  - matcher: {}
    httpGateway: {}
",
    );
    let plain = gateway(
        "{name: gateway-proxy, namespace: gloo-system}",
        "bindAddress: '::'\nbindPort: 8080\nhttpGateway: {}\n",
    );
    let secure = gateway(
        "{name: gateway-proxy-ssl, namespace: gloo-system}",
        "bindAddress: '::'\nbindPort: 8443\nssl: true\nhttpGateway: {}\n",
    );
    let t = translate(&docs(&[
        &up(),
        &plain,
        &secure,
        &hybrid,
        &default_vs(),
        &ssl_vs,
    ]));
    assert_no_rejections(&t);
    let managers = connection_managers(&t);
    let with: Vec<&str> = managers
        .iter()
        .filter(|(_, names)| names.iter().filter(|n| *n == GRPC_WEB_FILTER).count() == 1)
        .map(|(chain, _)| chain.as_str())
        .collect();
    let without: Vec<&str> = managers
        .iter()
        .filter(|(_, names)| !names.iter().any(|n| n == GRPC_WEB_FILTER))
        .map(|(chain, _)| chain.as_str())
        .collect();
    assert_eq!(
        with,
        [
            "listener-::-8080/",
            "listener-::-8090/listener-::-8090-1",
            "listener-::-8443/gloo-system_secure",
        ],
        "{managers:?}"
    );
    assert_eq!(
        without,
        ["listener-::-8090/listener-::-8090-0"],
        "{managers:?}"
    );
}

#[test]
fn grpc_web_disable_on_the_listener_leaves_it_off() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("grpcWeb: {disable: true}\n"),
        &default_vs(),
    ]));
    // Applied, so neither rejected nor warned about.
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(filter_names(&t), ["envoy.filters.http.router"]);
    // `disable: false` and an empty `grpcWeb` keep it.
    for on in ["grpcWeb: {disable: false}\n", "grpcWeb: {}\n"] {
        let t = translate(&docs(&[&up(), &gateway_with(on), &default_vs()]));
        assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
        assert_eq!(grpc_web_count(&t), 1, "{on}");
    }
    // A misspelt field is a load error, not a listener silently keeping the filter.
    let t = translate(&docs(&[
        &up(),
        &gateway_with("grpcWeb: {disabled: true}\n"),
        &default_vs(),
    ]));
    let text = t.reports.to_text();
    assert!(text.contains("disabled"), "{text}");
    assert!(t.reports.has_rejections(), "{text}");
}

/// Settings decide for listeners that do not set `grpcWeb`: `disableGrpcWeb` when set, else
/// `removeUnusedFilters` (Gloo's plugin `Init`); a listener's own `grpcWeb` overrides both.
#[test]
fn settings_decide_for_listeners_that_do_not_set_grpc_web() {
    let plain = gateway_with("httpConnectionManagerSettings: {useRemoteAddress: true}\n");
    let enabling = gateway_with("grpcWeb: {disable: false}\n");
    for (gloo, gateway, count) in [
        ("{disableGrpcWeb: true}", &plain, 0),
        ("{removeUnusedFilters: true}", &plain, 0),
        (
            "{disableGrpcWeb: false, removeUnusedFilters: true}",
            &plain,
            1,
        ),
        ("{disableGrpcWeb: false}", &plain, 1),
        ("{removeUnusedFilters: false}", &plain, 1),
        ("{}", &plain, 1),
        ("{disableGrpcWeb: true}", &enabling, 1),
        ("{removeUnusedFilters: true}", &enabling, 1),
    ] {
        let t = translate(&docs(&[&up(), gateway, &default_vs(), &settings(gloo)]));
        assert_no_rejections(&t);
        assert_eq!(
            grpc_web_count(&t),
            count,
            "{gloo} with {gateway}: {:?}",
            filter_names(&t)
        );
    }
}

/// Listeners are translated anew every time: a Settings edit adds or removes the filter on the
/// next translation, and the listener's version follows.
#[test]
fn a_settings_edit_flips_grpc_web_on_the_next_translation() {
    let mut translator = Translator::new();
    let with = |translator: &mut Translator, gloo: Option<&str>| {
        let settings = gloo.map(settings).unwrap_or_default();
        let t = translate_with(translator, &docs(&[&up(), &default_vs(), &settings]));
        assert_no_rejections(&t);
        t
    };
    let version = |t: &gloo_core::translate::Translation| {
        proxy(t).listeners["listener-::-8080"].version.clone()
    };
    let on = with(&mut translator, None);
    assert_eq!(grpc_web_count(&on), 1);
    let off = with(&mut translator, Some("{disableGrpcWeb: true}"));
    assert_eq!(grpc_web_count(&off), 0, "{:?}", filter_names(&off));
    assert_ne!(version(&on), version(&off));
    let still_off = with(&mut translator, Some("{removeUnusedFilters: true}"));
    assert_eq!(grpc_web_count(&still_off), 0);
    let back = with(
        &mut translator,
        Some("{disableGrpcWeb: false, removeUnusedFilters: true}"),
    );
    assert_eq!(grpc_web_count(&back), 1);
    assert_eq!(version(&back), version(&on));
}

const ROUTER: &str = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

// projects/gloo/pkg/translator/network_filters.go: `suppress_envoy_headers` only when
// `suppressEnvoyHeaders` is true, `dynamic_stats` as set.
#[test]
fn the_router_option_sets_the_router_filter_as_gloo_does() {
    let t = translate(&docs(&[
        &up(),
        &gateway_with("router: {suppressEnvoyHeaders: true, dynamicStats: false}\n"),
        &default_vs(),
    ]));
    assert_status(&t, Kind::Gateway, &gs("gateway-proxy"), Accepted, &[], &[]);
    assert_eq!(
        filter(&t, "envoy.filters.http.router"),
        json!({
            "name": "envoy.filters.http.router",
            "typedConfig": {"@type": ROUTER, "suppressEnvoyHeaders": true, "dynamicStats": false},
        })
    );
    // `suppressEnvoyHeaders: false` is Envoy's default; `dynamicStats: true` is carried as set.
    let t = translate(&docs(&[
        &up(),
        &gateway_with("router: {suppressEnvoyHeaders: false, dynamicStats: true}\n"),
        &default_vs(),
    ]));
    assert_eq!(
        filter(&t, "envoy.filters.http.router")["typedConfig"],
        json!({"@type": ROUTER, "dynamicStats": true})
    );
    // Unset: the plain router.
    let t = translate(&docs(&[
        &up(),
        &gateway_with("router: {}\n"),
        &default_vs(),
    ]));
    assert_eq!(
        filter(&t, "envoy.filters.http.router")["typedConfig"],
        json!({"@type": ROUTER})
    );
    // A misspelt field is refused rather than ignored.
    let t = translate(&docs(&[
        &up(),
        &gateway_with("router: {suppressEnvoyHeader: true}\n"),
    ]));
    assert!(
        t.reports.to_text().contains("suppressEnvoyHeader"),
        "{}",
        t.reports.to_text()
    );
}
