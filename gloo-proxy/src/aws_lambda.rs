//! envoy-gloo's AWS Lambda filter (`io.solo.aws_lambda`), served by gloo-filters'
//! [`AwsLambdaLayer`]: Gloo's `destinationSpec.aws` routes as gloo-core translates them (the
//! filter's `AWSLambdaConfig` on the connection manager, an `AWSLambdaPerRoute` per route or
//! weighted cluster, the `AWSLambdaProtocolExtension` on the Lambda cluster). Enabled by the
//! `aws-lambda` feature (on by default).
//!
//! As in envoy-gloo, the filter acts on requests whose cluster carries the protocol
//! extension: with the route's function it turns the request into a signed invocation (which
//! the router then sends to the cluster, with the invocation's path); without one it answers
//! `500 no function present for AWS upstream`. Credentials, in envoy-gloo's order: the
//! cluster's keys (the upstream's Secret); else the default chain of gloo's environment when
//! the filter config says `use_default_credentials` (Gloo's `enableCredentialsDiscovey`); else
//! service account credentials (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, STS reached
//! through the cluster the config names), assuming the cluster's `role_arn` by chaining from
//! `AWS_ROLE_ARN` unless `disable_role_chaining`; else `500 no credentials present for AWS
//! upstream`.
//!
//! **Deviations from envoy-gloo.** Temporary credentials are refreshed five minutes before
//! they expire (the token file is read again then), not on `credential_refresh_delay`'s timer
//! or a file watch; `request_transformer_config` and transformers other than the API Gateway
//! one are refused (gloo-core emits neither).
//!
//! ```
//! use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
//! use envoy_types::pb::google::protobuf::Any;
//! use gloo_core::xds::aws_lambda::{
//!     AwsLambdaConfig, AwsLambdaPerRoute, API_GATEWAY_TRANSFORMER,
//! };
//! use gloo_proxy::aws_lambda::{AWS_LAMBDA, AWS_LAMBDA_CONFIG_TYPE, AWS_LAMBDA_PER_ROUTE_TYPE};
//! use gloo_proxy::filter::FilterRegistry;
//! use prost::Message;
//!
//! # fn main() -> Result<(), String> {
//! let registry = FilterRegistry::with_builtins();
//! let factory = registry.get(AWS_LAMBDA).expect("registered with the builtins");
//! // The connection manager's filter config (credentials from the Lambda clusters' keys).
//! let config = Any {
//!     type_url: AWS_LAMBDA_CONFIG_TYPE.into(),
//!     value: AwsLambdaConfig::default().encode_to_vec(),
//! };
//! // A route's `destinationSpec.aws`: the function, answered as API Gateway would.
//! let route = AwsLambdaPerRoute {
//!     name: "checkout".into(),
//!     qualifier: "live".into(),
//!     transformer_config: Some(TypedExtensionConfig {
//!         name: API_GATEWAY_TRANSFORMER.into(),
//!         ..Default::default()
//!     }),
//!     ..Default::default()
//! };
//! let per_route = |route: &AwsLambdaPerRoute| Any {
//!     type_url: AWS_LAMBDA_PER_ROUTE_TYPE.into(),
//!     value: route.encode_to_vec(),
//! };
//! assert!(factory.layer(&config, Some(&per_route(&route)))?.is_some());
//!
//! // What the filter cannot do as envoy-gloo does is refused, naming the field.
//! let alb_too = AwsLambdaPerRoute { unwrap_as_alb: true, ..route };
//! let refused = factory.layer(&config, Some(&per_route(&alb_too))).err().expect("refused");
//! assert!(refused.starts_with("transformer_config"), "{refused}");
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use envoy_types::pb::google::protobuf::Any;
use gloo_core::xds::aws_lambda::{
    aws_lambda_config::CredentialsFetcher, AwsLambdaConfig, AwsLambdaPerRoute,
    AwsLambdaProtocolExtension, API_GATEWAY_TRANSFORMER, AWS_LAMBDA_FILTER,
};
use gloo_filters::aws::{
    default_provider, AssumeRoleProvider, AwsClient, BoxFuture, Credentials, CredentialsError,
    CredentialsFuture, Endpoints, Env, HttpTransport, ProvideCredentials,
    SharedCredentialsProvider, StsClient, WebIdentityProvider,
};
use gloo_filters::aws_lambda::{
    AwsLambdaLayer, InvocationStyle, LambdaBody, LambdaInvocation, LambdaLocalReply, LambdaTarget,
    ResolveTarget, Unwrap,
};
use http::{Request, Response};
use prost::Message;
use tower::{Layer, ServiceExt};

use crate::body::Body;
use crate::filter::{FilterFactory, FilterLayer, FilterRegistry, HttpService, Upstreams};
use crate::proxy::{LocalReply, RouteContext};

/// envoy-gloo's Lambda filter name (also the key of its cluster protocol options).
pub const AWS_LAMBDA: &str = AWS_LAMBDA_FILTER;
/// The filter config's type URL.
pub const AWS_LAMBDA_CONFIG_TYPE: &str =
    "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaConfig";
/// The per-route config's type URL.
pub const AWS_LAMBDA_PER_ROUTE_TYPE: &str =
    "type.googleapis.com/envoy.config.filter.http.aws_lambda.v2.AWSLambdaPerRoute";

/// Filter configs whose credential sources are kept (listeners in force, with room for a
/// config change).
const BUILT_CONFIGS: usize = 64;

pub(crate) fn register(registry: &mut FilterRegistry) {
    let factory = LambdaFactory {
        upstreams: registry.upstreams().clone(),
        built: Mutex::new(HashMap::new()),
    };
    registry.register(AWS_LAMBDA, factory);
}

/// Builds Lambda layers; keeps one [`Sources`] per filter config, so every route of a
/// listener shares its credentials.
struct LambdaFactory {
    upstreams: Upstreams,
    built: Mutex<HashMap<Vec<u8>, Arc<Sources>>>,
}

fn decode<M: Message + Default>(any: &Any, type_url: &str) -> Result<M, String> {
    if any.type_url != type_url {
        return Err(format!("expected {type_url}, got {}", any.type_url));
    }
    M::decode(any.value.as_slice()).map_err(|e| format!("cannot decode {}: {e}", any.type_url))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl FilterFactory for LambdaFactory {
    fn layer(&self, config: &Any, per_route: Option<&Any>) -> Result<Option<FilterLayer>, String> {
        let sources = {
            let mut built = lock(&self.built);
            match built.get(&config.value) {
                Some(sources) => sources.clone(),
                None => {
                    let filter = if config.type_url.is_empty() && config.value.is_empty() {
                        AwsLambdaConfig::default()
                    } else {
                        decode::<AwsLambdaConfig>(config, AWS_LAMBDA_CONFIG_TYPE)?
                    };
                    let sources = Arc::new(Sources::new(&filter, &self.upstreams)?);
                    if built.len() >= BUILT_CONFIGS {
                        built.clear();
                    }
                    built.insert(config.value.clone(), sources.clone());
                    sources
                }
            }
        };
        let targets = Targets { sources };
        let Some(per_route) = per_route else {
            return Ok(Some(no_function_layer(targets)));
        };
        let route: AwsLambdaPerRoute = decode(per_route, AWS_LAMBDA_PER_ROUTE_TYPE)?;
        if route.request_transformer_config.is_some() {
            return Err("request_transformer_config: not supported by gloo-proxy".into());
        }
        let mut unwrap = if route.unwrap_as_alb {
            Unwrap::Alb
        } else {
            Unwrap::None
        };
        if let Some(transformer) = &route.transformer_config {
            if route.unwrap_as_alb {
                return Err("transformer_config: cannot be set with unwrap_as_alb".into());
            }
            if transformer.name != API_GATEWAY_TRANSFORMER {
                return Err(format!(
                    "transformer_config: transformer {:?} is not supported by gloo-proxy",
                    transformer.name
                ));
            }
            unwrap = Unwrap::ApiGateway;
        }
        let propagate = targets.sources.propagate_original_routing;
        let mut layer = AwsLambdaLayer::new(&route.name, &route.qualifier, targets)
            .map_err(|e| format!("name / qualifier: {e}"))?
            .invocation(if route.r#async {
                InvocationStyle::Async
            } else {
                InvocationStyle::Sync
            })
            .unwrap_response(unwrap)
            .propagate_original_routing(propagate);
        if let Some(body) = &route.empty_body_override {
            layer = layer.empty_body_override(Bytes::from(body.value.clone()));
        }
        Ok(Some(filter_layer(layer)))
    }
}

/// Wraps the layer for gloo-proxy's stacks: an invocation is forwarded with its own path, and
/// the layer's own answers are local replies.
fn filter_layer(layer: AwsLambdaLayer) -> FilterLayer {
    FilterLayer::from_fn(move |inner: HttpService| {
        let inner = inner.map_request(|mut request: Request<LambdaBody<Body>>| {
            if request.extensions().get::<LambdaInvocation>().is_some() {
                if let Some(path) = request.uri().path_and_query().cloned() {
                    if let Some(ctx) = request.extensions_mut().get_mut::<RouteContext>() {
                        ctx.set_path(path);
                    }
                }
            }
            request.map(Body::new)
        });
        HttpService::new(
            layer
                .layer(inner)
                .map_response(|response: Response<LambdaBody<Body>>| {
                    let local = response.extensions().get::<LambdaLocalReply>().is_some();
                    let mut response = response.map(Body::new);
                    if local {
                        response.extensions_mut().insert(LocalReply);
                    }
                    response
                }),
        )
    })
}

/// envoy-gloo without a function on the route: a request to a Lambda cluster is answered
/// `500 no function present for AWS upstream`; others pass.
fn no_function_layer(targets: Targets) -> FilterLayer {
    let targets = Arc::new(targets);
    FilterLayer::from_fn(move |inner: HttpService| {
        let targets = targets.clone();
        HttpService::new(tower::service_fn(move |request: Request<Body>| {
            let (parts, body) = request.into_parts();
            let lambda = targets.is_lambda(&parts);
            let request = Request::from_parts(parts, body);
            let inner = inner.clone();
            async move {
                if lambda {
                    let mut response = crate::proxy::local_reply(
                        http::StatusCode::INTERNAL_SERVER_ERROR,
                        "no function present for AWS upstream",
                    );
                    response.extensions_mut().insert(LocalReply);
                    return Ok(response);
                }
                inner.oneshot(request).await
            }
        }))
    })
}

/// Where a listener's invocations get credentials from (one per filter config).
struct Sources {
    default: Option<SharedCredentialsProvider>,
    sts: Option<Sts>,
    propagate_original_routing: bool,
    /// Lambda clusters by (name, version): the target, from their protocol extension.
    clusters: Mutex<HashMap<(String, String), LambdaTarget>>,
}

impl Sources {
    fn new(config: &AwsLambdaConfig, upstreams: &Upstreams) -> Result<Self, String> {
        let env = Env::from_process();
        let (mut default, mut sts) = (None, None);
        match &config.credentials_fetcher {
            Some(CredentialsFetcher::UseDefaultCredentials(on)) if on.value => {
                let client = AwsClient::new().map_err(|e| e.to_string())?;
                default = Some(default_provider(&env, client));
            }
            Some(CredentialsFetcher::ServiceAccountCredentials(sa)) => {
                sts = Some(Sts::new(sa, &env, upstreams)?);
            }
            _ => {}
        }
        Ok(Sources {
            default,
            sts,
            propagate_original_routing: config.propagate_original_routing,
            clusters: Mutex::new(HashMap::new()),
        })
    }

    /// envoy-gloo's `getCredentials` order: the cluster's keys, the default chain, STS.
    fn credentials(&self, extension: &AwsLambdaProtocolExtension) -> SharedCredentialsProvider {
        if !extension.access_key.is_empty() && !extension.secret_key.is_empty() {
            return Arc::new(
                Credentials::new(extension.access_key.clone(), extension.secret_key.clone())
                    .with_session_token(extension.session_token.clone()),
            );
        }
        if let Some(default) = &self.default {
            return default.clone();
        }
        if let Some(sts) = &self.sts {
            let role = (!extension.role_arn.is_empty()).then_some(extension.role_arn.as_str());
            return sts.provider(role, extension.disable_role_chaining);
        }
        Arc::new(NoCredentials)
    }
}

/// No source of credentials is configured.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async {
            Err(CredentialsError::new(
                "the Lambda cluster has no keys and the filter no credentials source (Settings gloo.awsOptions)",
            ))
        })
    }
}

/// Service account credentials: the web identity token of the environment, STS reached
/// through a cluster.
struct Sts {
    client: AwsClient,
    region: String,
    token_file: PathBuf,
    env_role: String,
    /// Providers by (role, chained).
    providers: Mutex<HashMap<(String, bool), SharedCredentialsProvider>>,
}

impl Sts {
    fn new(
        config: &gloo_core::xds::aws_lambda::aws_lambda_config::ServiceAccountCredentials,
        env: &Env,
        upstreams: &Upstreams,
    ) -> Result<Self, String> {
        // As envoy-gloo, which refuses the config without them.
        let token_file = env
            .get("AWS_WEB_IDENTITY_TOKEN_FILE")
            .ok_or("service_account_credentials: AWS_WEB_IDENTITY_TOKEN_FILE must be set")?;
        let env_role = env
            .get("AWS_ROLE_ARN")
            .ok_or("service_account_credentials: AWS_ROLE_ARN must be set")?;
        let uri: http::Uri = config
            .uri
            .parse()
            .map_err(|e| format!("service_account_credentials.uri {:?}: {e}", config.uri))?;
        if config.cluster.is_empty() {
            return Err("service_account_credentials.cluster: required".into());
        }
        let transport = ClusterTransport {
            upstreams: upstreams.clone(),
            cluster: config.cluster.clone(),
        };
        let client = AwsClient::with_transport(Arc::new(transport))
            .endpoints(Endpoints::new().service("sts", uri));
        Ok(Sts {
            client,
            region: if config.region.is_empty() {
                "us-east-1".to_string()
            } else {
                config.region.clone()
            },
            token_file: PathBuf::from(token_file),
            env_role,
            providers: Mutex::new(HashMap::new()),
        })
    }

    /// envoy-gloo's `StsCredentialsProvider::find`: the cluster's role (else `AWS_ROLE_ARN`)
    /// with the web identity token; a role other than `AWS_ROLE_ARN` is assumed with
    /// `AWS_ROLE_ARN`'s credentials unless chaining is disabled.
    fn provider(&self, role: Option<&str>, disable_chaining: bool) -> SharedCredentialsProvider {
        let role = role.unwrap_or(&self.env_role).to_string();
        let chained = role != self.env_role && !disable_chaining;
        let key = (role.clone(), chained);
        if let Some(found) = lock(&self.providers).get(&key) {
            return found.clone();
        }
        let sts = StsClient::new(self.client.clone(), self.region.clone());
        let provider: SharedCredentialsProvider = if chained {
            let base = self.provider(None, false);
            Arc::new(AssumeRoleProvider::new(sts, role, base))
        } else {
            Arc::new(WebIdentityProvider::new(sts, role, self.token_file.clone()))
        };
        lock(&self.providers).insert(key, provider.clone());
        provider
    }
}

/// Sends AWS calls through one of the proxy's clusters (envoy-gloo's STS cluster).
#[derive(Debug)]
struct ClusterTransport {
    upstreams: Upstreams,
    cluster: String,
}

/// The largest STS answer read.
const MAX_STS_ANSWER: usize = 1 << 20;

impl HttpTransport for ClusterTransport {
    fn send(&self, request: Request<Bytes>) -> BoxFuture<'_, Result<Response<Bytes>, String>> {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let response = self
                .upstreams
                .send(&self.cluster, request.map(Body::full))
                .await?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_STS_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("cluster {:?}: reading the answer: {e}", self.cluster))?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// Resolves a request's invocation target from the cluster it is routed to.
struct Targets {
    sources: Arc<Sources>,
}

impl Targets {
    /// The protocol extension of the request's cluster, if it is a Lambda cluster.
    fn cluster<'a>(
        &self,
        parts: &'a http::request::Parts,
    ) -> Option<(&'a RouteContext, Arc<crate::upstream::Cluster>)> {
        let ctx = parts.extensions.get::<RouteContext>()?;
        let name = ctx.target_cluster(&parts.extensions)?;
        let cluster = ctx.config().clusters.get(name)?.clone();
        cluster.protocol_options(AWS_LAMBDA)?;
        Some((ctx, cluster))
    }

    fn is_lambda(&self, parts: &http::request::Parts) -> bool {
        self.cluster(parts).is_some()
    }
}

impl ResolveTarget for Targets {
    fn resolve(&self, parts: &http::request::Parts) -> Option<LambdaTarget> {
        let (_, cluster) = self.cluster(parts)?;
        let key = (cluster.name().to_string(), cluster.version().to_string());
        if let Some(target) = lock(&self.sources.clusters).get(&key) {
            return Some(target.clone());
        }
        let any = cluster.protocol_options(AWS_LAMBDA)?;
        let extension = match AwsLambdaProtocolExtension::decode(any.value.as_slice()) {
            Ok(extension) => extension,
            Err(err) => {
                tracing::warn!(cluster = cluster.name(), error = %err, "invalid io.solo.aws_lambda protocol options");
                AwsLambdaProtocolExtension::default()
            }
        };
        let target = LambdaTarget {
            host: extension.host.clone(),
            region: extension.region.clone(),
            credentials: self.sources.credentials(&extension),
        };
        let mut clusters = lock(&self.sources.clusters);
        if clusters.len() >= BUILT_CONFIGS {
            clusters.clear();
        }
        clusters.insert(key, target.clone());
        Some(target)
    }
}
