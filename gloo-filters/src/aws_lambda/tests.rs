//! The layer against a stand-in for Lambda that records what it is sent.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};

use super::*;
use crate::aws::sigv4::{
    canonical_request, credential_scope, payload_sha256, signature, string_to_sign,
};
use crate::aws::{Credentials, CredentialsError, CredentialsFuture, ProvideCredentials};

type Seen = Arc<Mutex<Vec<Request<Bytes>>>>;

fn target(credentials: impl ProvideCredentials) -> LambdaTarget {
    LambdaTarget {
        host: "lambda.eu-west-1.amazonaws.com".into(),
        region: "eu-west-1".into(),
        credentials: Arc::new(credentials),
    }
}

fn keys() -> Credentials {
    Credentials::new("AKIDEXAMPLE", "secret").with_session_token("token")
}

/// What the stand-in answers.
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static str,
}

fn ok(body: &'static str) -> Answer {
    Answer {
        status: 200,
        headers: vec![("content-type", "application/json")],
        body,
    }
}

/// Sends `request` through `layer` to a stand-in answering `answer`; returns the response and
/// what the stand-in received.
async fn call(
    layer: AwsLambdaLayer,
    request: Request<Full<Bytes>>,
    answer: Answer,
) -> (Response<Bytes>, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let answer = Arc::new(answer);
    let lambda = service_fn(move |request: Request<LambdaBody<Full<Bytes>>>| {
        let (record, answer) = (record.clone(), answer.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            record
                .lock()
                .unwrap()
                .push(Request::from_parts(parts, body));
            let mut response = Response::new(Full::new(Bytes::from_static(answer.body.as_bytes())));
            *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
            for (k, v) in &answer.headers {
                response
                    .headers_mut()
                    .append(*k, http::HeaderValue::from_static(v));
            }
            Ok::<_, Infallible>(response)
        }
    });
    let response = layer.layer(lambda).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (Response::from_parts(parts, body), seen)
}

fn post(path: &str, body: &'static str) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("x-client", "kept")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

#[tokio::test]
async fn a_request_becomes_a_signed_invocation_as_envoy_gloo_builds_it() {
    let layer = AwsLambdaLayer::new("echo", "%24LATEST", target(keys())).unwrap();
    let (response, seen) = call(layer, post("/anything?x=1", r#"{"a":1}"#), ok(r#"{"a":1}"#)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), r#"{"a":1}"#);
    let seen = seen.lock().unwrap();
    let sent = &seen[0];
    assert_eq!(sent.method(), "POST");
    assert_eq!(
        sent.uri(),
        "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST"
    );
    assert_eq!(sent.body(), r#"{"a":1}"#);
    let h = sent.headers();
    assert_eq!(h["host"], "lambda.eu-west-1.amazonaws.com");
    assert_eq!(h["x-amz-invocation-type"], "RequestResponse");
    assert_eq!(h["x-amz-log-type"], "None");
    assert_eq!(h["x-client"], "kept");
    assert_eq!(h["x-amz-security-token"], "token");
    assert!(sent.extensions().get::<LambdaInvocation>().is_some());
    // The signature: envoy-gloo's header set (the token and the client's headers unsigned),
    // the path encoded twice, scoped to the target's region and lambda; recomputed here.
    let authorization = h["authorization"].to_str().unwrap();
    let date = h["x-amz-date"].to_str().unwrap();
    assert!(authorization.starts_with(&format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-invocation-type;x-amz-log-type, Signature=",
        &date[..8]
    )), "{authorization}");
    let signed: Vec<(String, String)> = [
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-invocation-type",
        "x-amz-log-type",
    ]
    .iter()
    .map(|n| (n.to_string(), h[*n].to_str().unwrap().to_string()))
    .collect();
    let (creq, _) = canonical_request(
        "POST",
        "/2015-03-31/functions/echo/invocations",
        "Qualifier=%24LATEST",
        &signed,
        &payload_sha256(br#"{"a":1}"#),
        false,
    );
    assert!(creq.contains("\n/2015-03-31/functions/echo/invocations\nQualifier=%24LATEST\n"));
    let scope = credential_scope(&date[..8], "eu-west-1", "lambda");
    let expected = signature(
        "secret",
        &date[..8],
        "eu-west-1",
        "lambda",
        &string_to_sign(date, &scope, &creq),
    );
    assert!(authorization.ends_with(&format!("Signature={expected}")));
}

#[tokio::test]
async fn async_invocations_empty_bodies_and_original_routing() {
    let layer = AwsLambdaLayer::new("echo", "", target(keys()))
        .unwrap()
        .invocation(InvocationStyle::Async)
        .empty_body_override("{}")
        .propagate_original_routing(true);
    let request = Request::get("/orig?q=1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let answer = Answer {
        status: 202,
        headers: vec![],
        body: "",
    };
    let (response, seen) = call(layer, request, answer).await;
    assert_eq!(response.status(), 202);
    let seen = seen.lock().unwrap();
    let h = seen[0].headers();
    assert_eq!(seen[0].uri(), "/2015-03-31/functions/echo/invocations");
    assert_eq!(h["x-amz-invocation-type"], "Event");
    assert_eq!(seen[0].body(), "{}");
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["x-envoy-original-path"], "/orig?q=1");
    assert_eq!(h["x-envoy-original-method"], "GET");
}

#[tokio::test]
async fn results_unwrap_as_api_gateway_or_alb_and_function_errors_are_504() {
    let apigw = AwsLambdaLayer::new("f", "", target(keys()))
        .unwrap()
        .unwrap_response(Unwrap::ApiGateway);
    let (response, _) = call(
        apigw.clone(),
        post("/", "{}"),
        ok(r#"{"statusCode": 418, "headers": {"x-teapot": "yes"}, "body": "short and stout"}"#),
    )
    .await;
    assert_eq!(response.status(), 418);
    assert_eq!(response.headers()["x-teapot"], "yes");
    assert!(
        response.headers().get("content-type").is_none(),
        "Lambda's headers are dropped"
    );
    assert_eq!(response.headers()["content-length"], "15");
    assert_eq!(response.body(), "short and stout");
    let alb = AwsLambdaLayer::new("f", "", target(keys()))
        .unwrap()
        .unwrap_response(Unwrap::Alb);
    let (response, _) = call(
        alb,
        post("/", "{}"),
        ok(r#"{"statusCode": 404, "body": "nope"}"#),
    )
    .await;
    assert_eq!(
        (response.status(), response.body().as_ref()),
        (StatusCode::NOT_FOUND, &b"nope"[..])
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "ALB keeps Lambda's headers"
    );
    // x-amz-function-error: an upstream error.
    let failed = Answer {
        status: 200,
        headers: vec![("x-amz-function-error", "Unhandled")],
        body: r#"{"errorMessage": "boom"}"#,
    };
    let plain = AwsLambdaLayer::new("f", "", target(keys())).unwrap();
    let (response, _) = call(plain, post("/", "{}"), failed).await;
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(response.body(), r#"{"errorMessage": "boom"}"#);
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async { Err(CredentialsError::new("nothing here")) })
    }
}

/// Never a Lambda request.
struct Nowhere;

impl ResolveTarget for Nowhere {
    fn resolve(&self, _request: &http::request::Parts) -> Option<LambdaTarget> {
        None
    }
}

#[tokio::test]
async fn local_replies_and_requests_that_are_no_invocation() {
    let layer = AwsLambdaLayer::new("f", "", target(NoCredentials)).unwrap();
    let (response, seen) = call(layer, post("/", "{}"), ok("{}")).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.body(), "no credentials present for AWS upstream");
    assert!(response.extensions().get::<LambdaLocalReply>().is_some());
    assert!(seen.lock().unwrap().is_empty(), "nothing is sent unsigned");
    let small = AwsLambdaLayer::new("f", "", target(keys()))
        .unwrap()
        .max_body_bytes(4);
    let (response, seen) = call(small, post("/", "more than four"), ok("{}")).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(seen.lock().unwrap().is_empty());
    let elsewhere = AwsLambdaLayer::new("f", "", Nowhere).unwrap();
    let (response, seen) = call(elsewhere, post("/mine", "{}"), ok("{}")).await;
    assert_eq!(response.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].uri(), "/mine", "passed through untouched");
    assert!(seen[0].headers().get("authorization").is_none());
    assert!(AwsLambdaLayer::new("", "", Nowhere).is_err());
    assert!(AwsLambdaLayer::new("a b", "", Nowhere).is_err());
}
