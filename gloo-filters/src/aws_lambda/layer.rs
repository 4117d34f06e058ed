//! [`AwsLambdaLayer`]: the Lambda function a route invokes, and where its calls go.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::uri::PathAndQuery;
use tower::Layer;

use super::error::LambdaConfigError;
use super::service::AwsLambda;
use crate::aws::SharedCredentialsProvider;

/// How the function is invoked (`X-Amz-Invocation-Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InvocationStyle {
    /// `RequestResponse`: wait for the function's result.
    #[default]
    Sync,
    /// `Event`: queue the event; Lambda answers `202` at once.
    Async,
}

/// How the function's answer becomes the HTTP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Unwrap {
    /// As Lambda answers (the function's result is the body).
    #[default]
    None,
    /// The result is an API Gateway proxy response (`statusCode`, `headers`,
    /// `multiValueHeaders`, `body`, `isBase64Encoded`): envoy-gloo's
    /// `api_gateway_transformer`.
    ApiGateway,
    /// The result is an ALB response (envoy-gloo's `unwrap_as_alb`).
    Alb,
}

/// Where one request's invocation goes: the `host` header, the region its signature is scoped
/// to, and the credentials that sign it.
#[derive(Clone)]
pub struct LambdaTarget {
    /// The `host` header (`lambda.<region>.amazonaws.com`).
    pub host: String,
    /// The signing region.
    pub region: String,
    /// The credentials.
    pub credentials: SharedCredentialsProvider,
}

impl fmt::Debug for LambdaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaTarget")
            .field("host", &self.host)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Decides, per request, whether (and where) it is a Lambda invocation: `None` passes the
/// request through untouched. A proxy resolves it from the cluster the request is routed to
/// (envoy-gloo reads the cluster's `AWSLambdaProtocolExtension`); a fixed [`LambdaTarget`]
/// always invokes.
pub trait ResolveTarget: Send + Sync + 'static {
    /// The target of `request`, if it is a Lambda invocation.
    fn resolve(&self, request: &http::request::Parts) -> Option<LambdaTarget>;
}

impl ResolveTarget for LambdaTarget {
    fn resolve(&self, _request: &http::request::Parts) -> Option<LambdaTarget> {
        Some(self.clone())
    }
}

/// The configuration a layer holds.
pub(crate) struct Config {
    pub(crate) path: PathAndQuery,
    pub(crate) invocation: InvocationStyle,
    pub(crate) unwrap: Unwrap,
    pub(crate) empty_body: Option<Bytes>,
    pub(crate) propagate_original_routing: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) target: Arc<dyn ResolveTarget>,
}

/// Lambda's payload limit for synchronous invocations (6 MB), the default body limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// Invokes one AWS Lambda function for every request, as envoy-gloo's `io.solo.aws_lambda`
/// filter does (see the [module docs](super)). Holds configuration only; cheap to clone.
///
/// ```
/// use std::sync::Arc;
/// use gloo_filters::aws::Credentials;
/// use gloo_filters::aws_lambda::{AwsLambdaLayer, InvocationStyle, LambdaTarget, Unwrap};
///
/// let target = LambdaTarget {
///     host: "lambda.us-east-1.amazonaws.com".into(),
///     region: "us-east-1".into(),
///     credentials: Arc::new(Credentials::new("AKID", "secret")),
/// };
/// let layer = AwsLambdaLayer::new("echo", "$LATEST", target)
///     .unwrap()
///     .invocation(InvocationStyle::Async)
///     .unwrap_response(Unwrap::ApiGateway);
/// assert_eq!(layer.path(), "/2015-03-31/functions/echo/invocations?Qualifier=$LATEST");
/// ```
#[derive(Clone)]
pub struct AwsLambdaLayer {
    config: Arc<Config>,
}

impl fmt::Debug for AwsLambdaLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsLambdaLayer")
            .field("path", &self.config.path)
            .field("invocation", &self.config.invocation)
            .field("unwrap", &self.config.unwrap)
            .finish_non_exhaustive()
    }
}

impl AwsLambdaLayer {
    /// Invokes `function` (a name or ARN, query-escaped as envoy-gloo expects it) at
    /// `qualifier` (empty: `$LATEST`) through `target`: `POST
    /// /2015-03-31/functions/<function>/invocations?Qualifier=<qualifier>`.
    pub fn new(
        function: &str,
        qualifier: &str,
        target: impl ResolveTarget,
    ) -> Result<Self, LambdaConfigError> {
        if function.is_empty() {
            return Err(LambdaConfigError("the function name is empty".into()));
        }
        let mut path = format!("/2015-03-31/functions/{function}/invocations");
        if !qualifier.is_empty() {
            path.push_str("?Qualifier=");
            path.push_str(qualifier);
        }
        let path = PathAndQuery::try_from(path.as_str()).map_err(|e| {
            LambdaConfigError(format!(
                "function {function:?} qualifier {qualifier:?}: not a valid path ({e})"
            ))
        })?;
        Ok(AwsLambdaLayer {
            config: Arc::new(Config {
                path,
                invocation: InvocationStyle::Sync,
                unwrap: Unwrap::None,
                empty_body: None,
                propagate_original_routing: false,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
                target: Arc::new(target),
            }),
        })
    }

    fn with(mut self, change: impl FnOnce(&mut Config)) -> Self {
        match Arc::get_mut(&mut self.config) {
            Some(config) => change(config),
            None => {
                let c = &self.config;
                let mut copy = Config {
                    path: c.path.clone(),
                    invocation: c.invocation,
                    unwrap: c.unwrap,
                    empty_body: c.empty_body.clone(),
                    propagate_original_routing: c.propagate_original_routing,
                    max_body_bytes: c.max_body_bytes,
                    target: c.target.clone(),
                };
                change(&mut copy);
                self.config = Arc::new(copy);
            }
        }
        self
    }

    /// Synchronous (the default) or asynchronous invocation.
    pub fn invocation(self, style: InvocationStyle) -> Self {
        self.with(|c| c.invocation = style)
    }

    /// How the result becomes the response.
    pub fn unwrap_response(self, unwrap: Unwrap) -> Self {
        self.with(|c| c.unwrap = unwrap)
    }

    /// The payload sent (as `application/json`) when the request has no body (envoy-gloo's
    /// `empty_body_override`).
    pub fn empty_body_override(self, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        self.with(|c| c.empty_body = Some(body))
    }

    /// Send the original path and method as `x-envoy-original-path` and
    /// `x-envoy-original-method`.
    pub fn propagate_original_routing(self, on: bool) -> Self {
        self.with(|c| c.propagate_original_routing = on)
    }

    /// The largest request or response body buffered (6 MiB, Lambda's payload limit, by
    /// default): a request over it is answered `413`, a response over it to be unwrapped `500`.
    pub fn max_body_bytes(self, limit: usize) -> Self {
        self.with(|c| c.max_body_bytes = limit)
    }

    /// The invocation path.
    pub fn path(&self) -> &str {
        self.config.path.as_str()
    }
}

impl<S> Layer<S> for AwsLambdaLayer {
    type Service = AwsLambda<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AwsLambda::new(inner, self.config.clone())
    }
}
