//! Lambda destinations end to end: `gloo run` serves Gloo config with an `aws` upstream and
//! `destinationSpec.aws` routes, gloo-core translates them to envoy-gloo's Lambda filter, and
//! gloo-proxy invokes the function on moto (a real AWS API mock, `GLOO_TEST_MOTO_SERVER`,
//! which checks the SigV4 signature of every invocation) through the Lambda cluster, moved to
//! moto with `AWS_ENDPOINT_URL_LAMBDA`. moto's Python function echoes its event (moto runs it
//! without Docker), so each response shows what the proxy sent.

#![cfg(feature = "aws-lambda")]

mod support;

#[allow(dead_code)]
#[path = "../../gloo-discovery/tests/support/moto.rs"]
mod moto;

use std::fs;

use support::{free_port, gloo_ready_with_env, http_raw, poll, Response};

fn post(port: u16, path: &str, headers: &str, body: &str) -> Response {
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: fn.example\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    http_raw(port, request.as_bytes(), false).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// Polls `POST path` with `body` until it answers 200 (the config is served and the function
/// answers); panics with gloo's and moto's logs otherwise.
fn first_ok(
    gloo: &mut support::Proc,
    moto: &moto::Moto,
    port: u16,
    path: &str,
    body: &str,
) -> Response {
    poll(&format!("POST {path}"), || {
        gloo.check_running()?;
        let r = post(port, path, "", body);
        if r.status == 200 {
            Ok(r)
        } else {
            Err(format!("{} {}", r.status, r.body))
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}\nmoto:\n{}", gloo.logs(), moto.logs()))
}

fn route(prefix: &str, upstream: &str, aws: &str) -> String {
    format!(
        "    - matchers: [{{prefix: {prefix}}}]\n      routeAction: {{single: {{upstream: {{name: {upstream}, namespace: gloo-system}}, destinationSpec: {{aws: {aws}}}}}}}\n"
    )
}

fn upstream(name: &str, secret: &str) -> String {
    format!(
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: {name}, namespace: gloo-system}}\nspec:\n  aws:\n    region: us-east-1\n    secretRef: {{name: {secret}, namespace: gloo-system}}\n    lambdaFunctions:\n    - {{logicalName: echo, lambdaFunctionName: echo, qualifier: $LATEST}}\n    - {{logicalName: 'echo:1', lambdaFunctionName: echo, qualifier: '1'}}\n"
    )
}

fn secret(name: &str, key: &str, secret: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: gloo-system}}\nstringData:\n  aws_access_key_id: {key}\n  aws_secret_access_key: {secret}\n"
    )
}

#[test]
fn lambda_routes_invoke_the_function_sync_async_and_unwrapped() {
    let moto = moto::Moto::start();
    moto.admin(
        "function",
        serde_json::json!({"name": "echo", "publish": true}),
    );
    moto.admin("lambda-no-docker", serde_json::json!({}));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let admin = free_port();
    let routes = [
        route("/sync", "lambda", "{logicalName: echo}"),
        route("/async", "lambda", "{logicalName: 'echo:1', invocationStyle: ASYNC}"),
        route("/apigw", "lambda", "{logicalName: echo, unwrapAsApiGateway: true}"),
        route("/event", "lambda", "{logicalName: echo, requestTransformation: true}"),
        route("/forged", "forged", "{logicalName: echo}"),
        "    - matchers: [{prefix: /nofn}]\n      routeAction: {single: {upstream: {name: lambda, namespace: gloo-system}}}\n".to_string(),
    ]
    .concat();
    let config = [
        format!("apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"),
        secret("aws", &moto.keys.key, &moto.keys.secret),
        secret("forged", &moto.keys.key, "not-the-secret"),
        upstream("lambda", "aws"),
        upstream("forged", "forged"),
        format!("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: fn, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['fn.example']\n    routes:\n{routes}"),
    ]
    .join("---\n");
    fs::write(dir.join("config.yaml"), &config).unwrap();
    let endpoint = moto.url();
    let dir_text = dir.display().to_string();
    let mut gloo = gloo_ready_with_env(
        "gloo-run",
        &["run", "--config", &dir_text],
        &[("AWS_ENDPOINT_URL_LAMBDA", &endpoint)],
        admin,
        root.path(),
    );
    let logs = |gloo: &support::Proc| format!("{}\nmoto:\n{}", gloo.logs(), moto.logs());
    // Synchronous: the function's result (the event: the request body) is the response.
    let sync = first_ok(&mut gloo, &moto, port, "/sync", r#"{"hello":"world"}"#);
    assert_eq!(sync.body, r#"{"hello":"world"}"#);
    // Asynchronous: Lambda accepts the event (202).
    let r = post(port, "/async", "", r#"{"queued":true}"#);
    assert_eq!(r.status, 202, "{r:?}\n{}", logs(&gloo));
    // Unwrapped as an API Gateway response: the echoed event is one.
    let r = post(
        port,
        "/apigw",
        "",
        r#"{"statusCode": 201, "headers": {"x-from": "lambda"}, "body": "created"}"#,
    );
    assert_eq!(r.status, 201, "{r:?}\n{}", logs(&gloo));
    assert_eq!(r.header("x-from"), Some("lambda"));
    assert_eq!(r.body, "created");
    // requestTransformation: the function gets the request as an API Gateway event.
    let r = post(port, "/event?name=gloo", "x-custom: yes\r\n", "payload");
    assert_eq!(r.status, 200, "{r:?}\n{}", logs(&gloo));
    let event: serde_json::Value = serde_json::from_str(&r.body).expect("the echoed event");
    assert_eq!(event["httpMethod"], "POST");
    assert_eq!(event["path"], "/event");
    assert_eq!(event["queryStringParameters"]["name"], "gloo");
    assert_eq!(event["headers"]["x-custom"], "yes");
    assert_eq!(event["body"], "payload");
    // A wrong secret key: moto checks the signature and refuses the invocation.
    let r = post(port, "/forged", "", "{}");
    assert_eq!(r.status, 403, "{r:?}\n{}", logs(&gloo));
    assert!(r.body.contains("SignatureDoesNotMatch"), "{}", r.body);
    // A route to the Lambda cluster without a function: envoy-gloo's 500.
    let r = post(port, "/nofn", "", "{}");
    assert_eq!(
        (r.status, r.body.as_str()),
        (500, "no function present for AWS upstream")
    );
}

#[test]
fn service_account_credentials_come_from_sts_through_its_cluster() {
    // moto's signature check refuses the unsigned AssumeRoleWithWebIdentity (it is unsigned in
    // AWS: the token is the proof), so this moto checks none. The upstream has no keys and
    // the filter no other source: an invocation that succeeds was signed with what STS gave.
    let moto = moto::Moto::start_open();
    moto.admin("function", serde_json::json!({"name": "echo"}));
    moto.admin("lambda-no-docker", serde_json::json!({}));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("config");
    fs::create_dir_all(&dir).unwrap();
    let token = root.path().join("token");
    fs::write(&token, "a-projected-service-account-token").unwrap();
    let (port, admin) = (free_port(), free_port());
    // Settings: STS reached through the `sts` upstream's cluster (here moto), which no route
    // uses; the Lambda upstream has no Secret.
    let config = [
        format!("apiVersion: gateway.solo.io/v1\nkind: Gateway\nmetadata: {{name: gw, namespace: gloo-system}}\nspec:\n  bindAddress: 127.0.0.1\n  bindPort: {port}\n  httpGateway: {{}}\n"),
        format!("apiVersion: gloo.solo.io/v1\nkind: Settings\nmetadata: {{name: default, namespace: gloo-system}}\nspec:\n  gloo:\n    awsOptions:\n      serviceAccountCredentials: {{cluster: sts_gloo-system, uri: 'http://127.0.0.1:{}/', region: us-east-1}}\n", moto.port()),
        format!("apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {{name: sts, namespace: gloo-system}}\nspec:\n  static:\n    hosts: [{{addr: 127.0.0.1, port: {}}}]\n", moto.port()),
        "apiVersion: gloo.solo.io/v1\nkind: Upstream\nmetadata: {name: lambda, namespace: gloo-system}\nspec:\n  aws:\n    region: us-east-1\n    lambdaFunctions: [{logicalName: echo, lambdaFunctionName: echo, qualifier: $LATEST}]\n".to_string(),
        format!("apiVersion: gateway.solo.io/v1\nkind: VirtualService\nmetadata: {{name: fn, namespace: gloo-system}}\nspec:\n  virtualHost:\n    domains: ['fn.example']\n    routes:\n{}", route("/sync", "lambda", "{logicalName: echo}")),
    ]
    .join("---\n");
    fs::write(dir.join("config.yaml"), &config).unwrap();
    let (endpoint, token_file, dir_text) = (
        moto.url(),
        token.display().to_string(),
        dir.display().to_string(),
    );
    let mut gloo = gloo_ready_with_env(
        "gloo-run",
        &["run", "--config", &dir_text],
        &[
            ("AWS_ENDPOINT_URL_LAMBDA", &endpoint),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file),
            ("AWS_ROLE_ARN", &moto.keys.role),
        ],
        admin,
        root.path(),
    );
    let r = first_ok(&mut gloo, &moto, port, "/sync", r#"{"via":"sts"}"#);
    assert_eq!(r.body, r#"{"via":"sts"}"#);
    assert!(
        moto.logs().contains("POST / HTTP/1.1\" 200"),
        "STS AssumeRoleWithWebIdentity went to moto: {}",
        moto.logs()
    );
}
