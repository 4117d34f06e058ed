//! envoy-gloo's AWS Lambda filter (`io.solo.aws_lambda`) as a tower layer (feature
//! `aws-lambda`): each request becomes a SigV4-signed invocation of one Lambda function, and
//! the function's result becomes the response.
//!
//! [`AwsLambdaLayer`] names the function (and qualifier), the invocation style
//! ([`InvocationStyle`]: `RequestResponse` or `Event`), how the result is unwrapped
//! ([`Unwrap`]: as it is, as an API Gateway proxy response, or as an ALB response), and where
//! each request's invocation goes ([`ResolveTarget`]: the `host`, the signing region and the
//! credentials; gloo-proxy resolves it from the cluster the route sends to, as envoy-gloo reads
//! the cluster's `AWSLambdaProtocolExtension`). The inner service sends the invocation on
//! (gloo-proxy's router to the Lambda cluster; any HTTPS client elsewhere).
//!
//! As envoy-gloo: the request body is the payload (`empty_body_override` when there is none);
//! its headers go along, `host` replaced; the signature covers `content-type`, `host`,
//! `x-amz-date`, `x-amz-invocation-type` and `x-amz-log-type` only, so a proxy may still add
//! headers of its own; a session token follows the signature. An answer with
//! `x-amz-function-error` becomes `504`. Answers of the layer's own carry
//! [`LambdaLocalReply`]: `500 no credentials present for AWS upstream`, `413 Payload Too
//! Large` for a body over the limit (Lambda's 6 MB payload limit by default).
//!
//! To send the request as an API Gateway event, run gloo-filters' transformation layer with a
//! `HeaderBodyTransform` (`add_request_metadata`) before this one, as Gloo's
//! `requestTransformation` does.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use gloo_filters::aws::Credentials;
//! use gloo_filters::aws_lambda::{AwsLambdaLayer, LambdaTarget, Unwrap};
//! use http_body_util::{BodyExt, Full};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let target = LambdaTarget {
//!     host: "lambda.us-east-1.amazonaws.com".into(),
//!     region: "us-east-1".into(),
//!     credentials: Arc::new(Credentials::new("AKID", "secret")),
//! };
//! let layer = AwsLambdaLayer::new("echo", "", target).unwrap().unwrap_response(Unwrap::ApiGateway);
//! // Stands in for Lambda: checks the invocation and answers a proxy response.
//! let lambda = service_fn(|request: http::Request<_>| async move {
//!     assert_eq!(request.uri(), "/2015-03-31/functions/echo/invocations");
//!     assert!(request.headers()["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256"));
//!     let result = r#"{"statusCode": 201, "body": "made"}"#;
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(result))))
//! });
//! let response = layer.layer(lambda).oneshot(http::Request::new(Full::new(Bytes::from("{}")))).await.unwrap();
//! assert_eq!(response.status(), 201);
//! assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "made");
//! # }
//! ```

mod error;
mod future;
mod layer;
mod response;
mod service;

pub use error::{LambdaConfigError, LambdaInvocation, LambdaLocalReply};
pub use future::ResponseFuture;
pub use layer::{
    AwsLambdaLayer, InvocationStyle, LambdaTarget, ResolveTarget, Unwrap, DEFAULT_MAX_BODY_BYTES,
};
pub use response::{
    AMAZON_ERRORTYPE_HEADER, LAMBDA_STATUS_CODE_HEADER, LAMBDA_STATUS_REASON_HEADER,
};
pub use service::{AwsLambda, LambdaBody};

#[cfg(test)]
mod tests;
