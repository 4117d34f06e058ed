//! AWS Lambda upstreams and `destinationSpec.aws` routes, field for field as Gloo's aws plugin
//! emits them (`projects/gloo/pkg/plugins/aws/plugin.go`, envoy-gloo's `io.solo.aws_lambda`),
//! and what Gloo refuses.

mod common;

use common::*;
use gloo_core::model::Kind;
use gloo_core::status::State;
use gloo_core::translate::{LambdaEndpoint, Translator};
use serde_json::{json, Value};

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: aws-creds, namespace: gloo-system}\nstringData:\n  aws_access_key_id: AKIDEXAMPLE\n  aws_secret_access_key: s3cr3t\n";

fn lambda_upstream(extra: &str) -> String {
    resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: lambda, namespace: gloo-system}",
        &format!(
            "aws:\n  region: us-east-1\n  secretRef: {{name: aws-creds, namespace: gloo-system}}\n  lambdaFunctions:\n  - {{logicalName: echo, lambdaFunctionName: echo, qualifier: $LATEST}}\n  - {{logicalName: 'echo:1', lambdaFunctionName: echo, qualifier: '1'}}\n{extra}"
        ),
    )
}

/// A route `prefix` to the `lambda` upstream with destination spec `aws` (a flow mapping).
fn route(prefix: &str, aws: &str) -> String {
    format!(
        "- matchers: [{{prefix: {prefix}}}]\n  routeAction: {{single: {{upstream: {{name: lambda, namespace: gloo-system}}, destinationSpec: {{aws: {aws}}}}}}}\n"
    )
}

fn lambda_vs(routes: &[String]) -> String {
    vs(
        "fn",
        &format!("domains: ['fn.example']\nroutes:\n{}", routes.concat()),
    )
}

fn per_route(route: &Value) -> Value {
    route["typedPerFilterConfig"]["io.solo.aws_lambda"].clone()
}

fn wrapped(config: Value) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
        "config": config,
        "isOptional": true,
    })
}

fn cluster_json(t: &gloo_core::translate::Translation) -> Value {
    proxy_json(t)["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lambda_gloo-system")
        .cloned()
        .expect("the lambda cluster")
}

#[test]
fn an_aws_upstream_is_a_cluster_of_the_lambda_endpoint_with_the_secrets_keys() {
    let t = translate(&docs(&[
        SECRET,
        &lambda_upstream(""),
        &lambda_vs(&[route("/", "{logicalName: echo}")]),
    ]));
    assert_no_rejections(&t);
    let cluster = cluster_json(&t);
    assert_eq!(cluster["type"], "LOGICAL_DNS");
    assert_eq!(cluster["dnsLookupFamily"], "V4_ONLY");
    let address = &cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]
        ["address"]["socketAddress"];
    assert_eq!(address["address"], "lambda.us-east-1.amazonaws.com");
    assert_eq!(address["portValue"], 443);
    assert_eq!(
        cluster["transportSocket"]["typedConfig"]["sni"],
        "lambda.us-east-1.amazonaws.com"
    );
    assert!(cluster.get("edsClusterConfig").is_none());
    assert_eq!(
        cluster["typedExtensionProtocolOptions"]["io.solo.aws_lambda"],
        json!({
            "@type": "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaProtocolExtension",
            "host": "lambda.us-east-1.amazonaws.com",
            "region": "us-east-1",
            "accessKey": "AKIDEXAMPLE",
            "secretKey": "s3cr3t",
        })
    );
    // No EDS for it.
    assert!(!proxy(&t).endpoints.contains_key("lambda_gloo-system"));
}

#[test]
fn routes_name_the_function_invocation_and_unwrapping_as_gloo_does() {
    let t = translate(&docs(&[
        SECRET,
        &lambda_upstream(""),
        &lambda_vs(&[
            route("/sync", "{logicalName: echo}"),
            route(
                "/async",
                "{logicalName: 'echo:1', invocationStyle: ASYNC, unwrapAsApiGateway: true}",
            ),
            route(
                "/legacy",
                "{logicalName: echo, responseTransformation: true, requestTransformation: true}",
            ),
            route("/alb", "{logicalName: echo, unwrapAsAlb: true}"),
        ]),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_json(&t, "fn")["routes"].clone();
    assert_eq!(
        per_route(&routes[0]),
        wrapped(json!({
            "@type": "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaPerRoute",
            "name": "echo",
            "qualifier": "%24LATEST",
        }))
    );
    let api_gateway = json!({
        "name": "io.solo.api_gateway.api_gateway_transformer",
        "typedConfig": {"@type": "type.googleapis.com/envoy.config.transformer.aws_lambda.v2.ApiGatewayTransformation"},
    });
    assert_eq!(
        per_route(&routes[1]),
        wrapped(json!({
            "@type": "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaPerRoute",
            "name": "echo",
            "qualifier": "1",
            "async": true,
            "transformerConfig": api_gateway,
        }))
    );
    // The deprecated responseTransformation is unwrapAsApiGateway; requestTransformation is
    // a stage-2 (Gloo's AwsStageNumber) request transformation into an API Gateway event.
    assert_eq!(
        per_route(&routes[2])["config"]["transformerConfig"],
        api_gateway
    );
    assert_eq!(
        routes[2]["typedPerFilterConfig"]["io.solo.transformation"]["config"]["transformations"],
        json!([{"stage": 2, "requestMatch": {"requestTransformation": {"headerBodyTransform": {"addRequestMetadata": true}}}}])
    );
    assert_eq!(per_route(&routes[3])["config"]["unwrapAsAlb"], true);
    // The listener: a stage-2 transformation filter just before the Lambda filter, both
    // optional, then the router.
    let filters = http_filters(&t);
    let names = filter_names(&t);
    assert_eq!(
        &names[names.len() - 3..],
        [
            "io.solo.transformation",
            "io.solo.aws_lambda",
            "envoy.filters.http.router"
        ]
    );
    let n = filters.len();
    assert_eq!(filters[n - 3]["typedConfig"]["stage"], 2);
    assert_eq!(filters[n - 3]["isOptional"], true);
    assert_eq!(
        filters[n - 2],
        json!({
            "name": "io.solo.aws_lambda",
            "typedConfig": {"@type": "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaConfig"},
            "isOptional": true,
        })
    );
}

#[test]
fn destinations_gloo_refuses_are_errors_and_answer_as_invalid_routes() {
    let other = static_upstream("web", 8080);
    let to_web = "- matchers: [{prefix: /web}]\n  routeAction: {single: {upstream: {name: web, namespace: gloo-system}, destinationSpec: {aws: {logicalName: echo}}}}\n".to_string();
    let t = translate(&docs(&[
        SECRET,
        &lambda_upstream(""),
        &other,
        &lambda_vs(&[
            route("/unknown", "{logicalName: nope}"),
            route(
                "/both",
                "{logicalName: echo, unwrapAsAlb: true, unwrapAsApiGateway: true}",
            ),
            to_web,
            route("/ok", "{logicalName: echo}"),
        ]),
    ]));
    let status = status(&t, Kind::VirtualService, &gs("fn"));
    assert_eq!(status.state, State::Rejected, "{status:?}");
    let text = format!("{status:?}");
    for expected in [
        "routes[0].routeAction.single.destinationSpec.aws: unknown lambda function nope",
        "routes[1].routeAction.single.destinationSpec.aws: only one of unwrapAsAlb and unwrapAsApiGateway/responseTransformation may be set",
        "routes[2].routeAction.single.destinationSpec.aws: gloo-system.web is not an AWS upstream",
    ] {
        assert!(text.contains(expected), "{expected}\n{text}");
    }
}

#[test]
fn credentials_come_from_a_secret_or_settings_else_the_upstream_is_rejected() {
    let no_secret = resource(
        "gloo.solo.io/v1",
        "Upstream",
        "{name: lambda, namespace: gloo-system}",
        "aws: {region: us-east-1, lambdaFunctions: [{logicalName: echo, lambdaFunctionName: echo}]}",
    );
    let t = translate(&docs(&[&no_secret]));
    let rejected = status(&t, Kind::Upstream, &gs("lambda"));
    assert_eq!(rejected.state, State::Rejected);
    assert!(
        format!("{rejected:?}").contains("no aws secret provided"),
        "{rejected:?}"
    );
    // Settings' credentials discovery: accepted, and the filter uses the default chain.
    let settings = resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        "gloo: {awsOptions: {enableCredentialsDiscovey: true, propagateOriginalRouting: true}}",
    );
    let t = translate(&docs(&[
        &no_secret,
        &settings,
        &lambda_vs(&[route("/", "{logicalName: echo}")]),
    ]));
    assert_no_rejections(&t);
    let filters = http_filters(&t);
    let lambda = filters
        .iter()
        .find(|f| f["name"] == "io.solo.aws_lambda")
        .unwrap();
    assert_eq!(lambda["typedConfig"]["useDefaultCredentials"], true);
    assert_eq!(lambda["typedConfig"]["propagateOriginalRouting"], true);
    let extension = &cluster_json(&t)["typedExtensionProtocolOptions"]["io.solo.aws_lambda"];
    assert!(extension.get("accessKey").is_none());
    // Service account credentials: STS through the cluster Settings name, here an upstream's
    // that no route uses (it is emitted all the same).
    let settings = resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        "gloo: {awsOptions: {serviceAccountCredentials: {cluster: sts_gloo-system, uri: 'https://sts.amazonaws.com/', region: us-east-1}}}",
    );
    let t = translate(&docs(&[
        &no_secret,
        &settings,
        &static_upstream("sts", 443),
        &lambda_vs(&[route("/", "{logicalName: echo}")]),
    ]));
    assert_no_rejections(&t);
    assert!(proxy(&t).clusters.contains_key("sts_gloo-system"));
    let filters = http_filters(&t);
    let lambda = filters
        .iter()
        .find(|f| f["name"] == "io.solo.aws_lambda")
        .unwrap();
    assert_eq!(
        lambda["typedConfig"]["serviceAccountCredentials"],
        json!({"cluster": "sts_gloo-system", "uri": "https://sts.amazonaws.com/", "region": "us-east-1"})
    );
    // A Secret without AWS keys is an error naming it.
    let t = translate(&docs(&[
        "apiVersion: v1\nkind: Secret\nmetadata: {name: aws-creds, namespace: gloo-system}\nstringData: {token: x}\n",
        &lambda_upstream(""),
    ]));
    let status = status(&t, Kind::Upstream, &gs("lambda"));
    assert_eq!(status.state, State::Rejected);
    assert!(
        format!("{status:?}")
            .contains("spec.aws.secretRef: Secret gloo-system.aws-creds: not an AWS secret"),
        "{status:?}"
    );
}

#[test]
fn settings_fallback_invokes_the_first_function_without_a_destination_spec() {
    let settings = resource(
        "gloo.solo.io/v1",
        "Settings",
        "{name: default, namespace: gloo-system}",
        "gloo: {awsOptions: {fallbackToFirstFunction: true}}",
    );
    let plain = "- matchers: [{prefix: /}]\n  routeAction: {single: {upstream: {name: lambda, namespace: gloo-system}}}\n".to_string();
    let unknown = route("/unknown", "{logicalName: nope}");
    let t = translate(&docs(&[
        SECRET,
        &lambda_upstream(""),
        &settings,
        &lambda_vs(&[unknown, plain]),
    ]));
    assert_no_rejections(&t);
    let routes = vhost_json(&t, "fn")["routes"].clone();
    assert_eq!(
        per_route(&routes[0])["config"]["name"],
        "echo",
        "an unknown function falls back"
    );
    assert_eq!(
        per_route(&routes[1])["config"]["qualifier"],
        "%24LATEST",
        "so does a route without a spec"
    );
}

#[test]
fn discovered_functions_reach_routes_already_translated() {
    let mut translator = Translator::new();
    let vs = lambda_vs(&[route("/", "{logicalName: 'upper'}")]);
    // No such function yet: the route is refused.
    let t = translate_with(&mut translator, &docs(&[SECRET, &lambda_upstream(""), &vs]));
    assert_eq!(
        status(&t, Kind::VirtualService, &gs("fn")).state,
        State::Rejected
    );
    // Discovery adds it to the upstream: the same VirtualService now routes to it.
    let with_upper = lambda_upstream(
        "  - {logicalName: upper, lambdaFunctionName: upper, qualifier: $LATEST}\n",
    );
    let t = translate_with(&mut translator, &docs(&[SECRET, &with_upper, &vs]));
    assert_no_rejections(&t);
    assert_eq!(
        per_route(&vhost_json(&t, "fn")["routes"][0])["config"]["name"],
        "upper"
    );
}

#[test]
fn an_endpoint_override_moves_the_cluster_and_the_host() {
    let mut translator = Translator::new().lambda_endpoint(Some(
        LambdaEndpoint::parse("http://127.0.0.1:5000").unwrap(),
    ));
    let t = translate_with(
        &mut translator,
        &docs(&[
            SECRET,
            &lambda_upstream(""),
            &lambda_vs(&[route("/", "{logicalName: echo}")]),
        ]),
    );
    assert_no_rejections(&t);
    let cluster = cluster_json(&t);
    let address = &cluster["loadAssignment"]["endpoints"][0]["lbEndpoints"][0]["endpoint"]
        ["address"]["socketAddress"];
    assert_eq!(
        (address["address"].clone(), address["portValue"].clone()),
        (json!("127.0.0.1"), json!(5000))
    );
    assert!(cluster.get("transportSocket").is_none(), "plain http");
    assert_eq!(
        cluster["typedExtensionProtocolOptions"]["io.solo.aws_lambda"]["host"],
        "127.0.0.1:5000"
    );
}
