//! envoy-gloo's AWS Lambda filter messages (`io.solo.aws_lambda`, package
//! `envoy.config.filter.http.aws_lambda.v2`, `api/envoy/config/filter/http/aws_lambda/v2/
//! aws_lambda.proto` in solo-io/envoy-gloo, Apache 2.0), and the API Gateway response
//! transformer's (`envoy.config.transformer.aws_lambda.v2.ApiGatewayTransformation`), written
//! as prost structs: stock Envoy has no such protos. Field names and numbers are envoy-gloo's;
//! the same `.proto` files are compiled into the descriptor set gloo-core prints JSON with
//! (`tools/envoy-descriptors/proto/envoy-gloo`).
//!
//! ```
//! use gloo_core::xds::aws_lambda::AwsLambdaPerRoute;
//! use prost::Message;
//!
//! let route = AwsLambdaPerRoute { name: "echo".into(), qualifier: "1".into(), ..Default::default() };
//! let bytes = route.encode_to_vec();
//! assert_eq!(AwsLambdaPerRoute::decode(bytes.as_slice()).unwrap(), route);
//! ```

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::google::protobuf::{BoolValue, Duration, StringValue};

/// The function a route invokes (`AWSLambdaPerRoute`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AwsLambdaPerRoute {
    /// The function's name (or ARN), query-escaped.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The qualifier (version or alias), query-escaped; `$LATEST` when empty.
    #[prost(string, tag = "2")]
    pub qualifier: String,
    /// Invoke asynchronously (`X-Amz-Invocation-Type: Event`).
    #[prost(bool, tag = "3")]
    pub r#async: bool,
    /// The body sent when the request has none.
    #[prost(message, optional, tag = "4")]
    pub empty_body_override: Option<StringValue>,
    /// Unwrap the response as an ALB would (deprecated in envoy-gloo, still honoured).
    #[prost(bool, tag = "5")]
    pub unwrap_as_alb: bool,
    /// The response transformer (Gloo's `unwrapAsApiGateway`).
    #[prost(message, optional, tag = "6")]
    pub transformer_config: Option<TypedExtensionConfig>,
    /// The request transformer.
    #[prost(message, optional, tag = "7")]
    pub request_transformer_config: Option<TypedExtensionConfig>,
}

/// What a Lambda cluster invokes with (`AWSLambdaProtocolExtension`, in the cluster's
/// `typed_extension_protocol_options` under `io.solo.aws_lambda`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AwsLambdaProtocolExtension {
    /// The `host` header of invocations (`lambda.<region>.amazonaws.com`).
    #[prost(string, tag = "1")]
    pub host: String,
    /// The region signatures are scoped to.
    #[prost(string, tag = "2")]
    pub region: String,
    /// The access key of the upstream's Secret.
    #[prost(string, tag = "3")]
    pub access_key: String,
    /// The secret key of the upstream's Secret.
    #[prost(string, tag = "4")]
    pub secret_key: String,
    /// The session token of the upstream's Secret.
    #[prost(string, tag = "5")]
    pub session_token: String,
    /// The role to assume with service account credentials.
    #[prost(string, tag = "6")]
    pub role_arn: String,
    /// Assume `role_arn` directly with the web identity token instead of chaining from
    /// `AWS_ROLE_ARN`.
    #[prost(bool, tag = "7")]
    pub disable_role_chaining: bool,
}

/// The filter's own config (`AWSLambdaConfig`): where credentials come from when the cluster
/// carries none.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AwsLambdaConfig {
    /// The `credentials_fetcher` oneof.
    #[prost(oneof = "aws_lambda_config::CredentialsFetcher", tags = "1, 2")]
    pub credentials_fetcher: Option<aws_lambda_config::CredentialsFetcher>,
    /// Send the original path and method as `x-envoy-original-path` / `-method`.
    #[prost(bool, tag = "3")]
    pub propagate_original_routing: bool,
    /// How often service account credentials are refreshed.
    #[prost(message, optional, tag = "4")]
    pub credential_refresh_delay: Option<Duration>,
}

/// Nested types of [`AwsLambdaConfig`].
pub mod aws_lambda_config {
    use super::*;

    /// Where credentials come from.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum CredentialsFetcher {
        /// The default chain of the environment (Gloo's `enableCredentialsDiscovey`).
        #[prost(message, tag = "1")]
        UseDefaultCredentials(BoolValue),
        /// STS `AssumeRoleWithWebIdentity` with the projected service account token.
        #[prost(message, tag = "2")]
        ServiceAccountCredentials(ServiceAccountCredentials),
    }

    /// The STS endpoint service account credentials come from.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServiceAccountCredentials {
        /// The cluster of the STS endpoint.
        #[prost(string, tag = "1")]
        pub cluster: String,
        /// The STS endpoint's full URI.
        #[prost(string, tag = "2")]
        pub uri: String,
        /// The timeout of STS calls.
        #[prost(message, optional, tag = "3")]
        pub timeout: Option<Duration>,
        /// The region of the STS endpoint (default `us-east-1`).
        #[prost(string, tag = "4")]
        pub region: String,
    }
}

/// The API Gateway response transformer's config (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApiGatewayTransformation {}

/// The filter's name, also the key of its cluster protocol options.
pub const AWS_LAMBDA_FILTER: &str = "io.solo.aws_lambda";
/// The name of the API Gateway response transformer (`transformer_config.name`).
pub const API_GATEWAY_TRANSFORMER: &str = "io.solo.api_gateway.api_gateway_transformer";
