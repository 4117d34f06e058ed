//! Gloo's AWS Lambda plugin (`projects/gloo/pkg/plugins/aws`): `aws` upstreams become clusters
//! of the Lambda endpoint carrying envoy-gloo's `AWSLambdaProtocolExtension` (region, host
//! and the upstream's Secret keys), routes with a `destinationSpec.aws` get an
//! `AWSLambdaPerRoute` (the function, invocation style, response unwrapping), and listeners
//! whose proxy has `aws` upstreams get the `io.solo.aws_lambda` filter with Settings'
//! `gloo.awsOptions` (`AWSLambdaConfig`).
//!
//! Stock Envoy has neither the filter nor its protos: like the transformation filter, the
//! filter and every per-route config are marked optional, so a stock Envoy skips them. It
//! still refuses the protocol options of a Lambda cluster (it knows no `io.solo.aws_lambda`),
//! so only envoy-gloo and gloo-proxy serve Lambda routes.
//!
//! **Deviations from Gloo.**
//! - `wrapAsApiGateway` is Gloo Enterprise's (its request wrapper is not open source); gloo
//!   wraps the request as `requestTransformation` does, with envoy-gloo's `HeaderBodyTransform`
//!   (`add_request_metadata`): `body`, `headers`, `multiValueHeaders`, `httpMethod`, `path`,
//!   `queryString`, `queryStringParameters`, `multiValueQueryStringParameters`, the fields of
//!   API Gateway's REST proxy event.
//! - With `awsAccountId` and no region on the upstream, Gloo takes `AWS_REGION` from the
//!   control plane's environment for the function ARN; gloo-core reads no environment and
//!   refuses the upstream instead (its region is required anyway).
//! - The Lambda endpoint can be moved (a VPC endpoint, a local mock) with
//!   [`Translator::lambda_endpoint`](super::Translator::lambda_endpoint); Gloo always uses
//!   `lambda.<region>.amazonaws.com:443`.

use envoy_types::pb::envoy::config::cluster::v3::{cluster, Cluster};
use envoy_types::pb::envoy::config::core::v3::{
    transport_socket, TransportSocket, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpFilter,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, UpstreamTlsContext,
};
use envoy_types::pb::google::protobuf::{Any, BoolValue};

use super::clusters::load_assignment;
use super::routes::{action_destinations as destinations, destination_upstream, duration};
use super::Endpoint;
use crate::model::routing::{AwsDestinationSpec, Destination, DestinationSpecRef, InvocationStyle};
use crate::model::upstream::AwsUpstreamSpec;
use crate::model::{ResourceRef, DEFAULT_NAMESPACE};
use crate::resolve::{RouteModelAction, VirtualHostModel};
use crate::snapshot::ConfigSnapshot;
use crate::xds::aws_lambda::{
    aws_lambda_config, ApiGatewayTransformation, AwsLambdaConfig, AwsLambdaPerRoute,
    AwsLambdaProtocolExtension, API_GATEWAY_TRANSFORMER,
};
use crate::xds::transformation as tpb;
use crate::xds::{pack, EnvoyMessage};

pub use crate::xds::aws_lambda::AWS_LAMBDA_FILTER;

/// Gloo's `AwsStageNumber`: the transformation stage of `requestTransformation`, run by a
/// transformation filter of its own just before the Lambda filter.
pub(crate) const AWS_STAGE: u32 = 2;

/// Where Lambda clusters send invocations instead of `lambda.<region>.amazonaws.com:443`
/// (a VPC endpoint, a local mock): a host, a port, and whether to use TLS.
///
/// ```
/// use gloo_core::translate::LambdaEndpoint;
/// let endpoint = LambdaEndpoint::parse("http://127.0.0.1:5000").unwrap();
/// assert_eq!((endpoint.host(), endpoint.port(), endpoint.tls()), ("127.0.0.1", 5000, false));
/// assert!(LambdaEndpoint::parse("ftp://x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEndpoint {
    host: String,
    port: u16,
    tls: bool,
}

impl LambdaEndpoint {
    /// Parses `http://host[:port]` or `https://host[:port]` (default ports 80 and 443).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "Lambda endpoint {url:?}: not an http:// or https:// URL"
            ));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("Lambda endpoint {url:?}: bad port {port:?}"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(format!("Lambda endpoint {url:?}: no host"));
        }
        Ok(LambdaEndpoint {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            tls,
        })
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether invocations use TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The `host` header invocations carry.
    fn authority(&self) -> String {
        match (self.tls, self.port) {
            (true, 443) | (false, 80) => self.host.clone(),
            _ if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Gloo's `getLambdaHostname`.
fn lambda_host(region: &str) -> String {
    format!("lambda.{region}.amazonaws.com")
}

/// Settings' `gloo.awsOptions` (the first Settings that sets it).
fn aws_options(snapshot: &ConfigSnapshot) -> Option<&crate::model::settings::AwsOptions> {
    snapshot
        .settings
        .values()
        .find_map(|e| e.object.spec.gloo.as_ref()?.aws_options.as_ref())
}

/// The upstream whose cluster Settings' `serviceAccountCredentials.cluster` names, when the
/// snapshot has `aws` upstreams (the Lambda filter fetches credentials through it).
pub(crate) fn sts_upstream(snapshot: &ConfigSnapshot) -> Option<ResourceRef> {
    if !snapshot
        .upstreams
        .values()
        .any(|u| u.object.spec.aws.is_some())
    {
        return None;
    }
    let cluster = aws_options(snapshot)?
        .service_account_credentials
        .as_ref()?
        .cluster
        .as_deref()?;
    snapshot
        .upstreams
        .keys()
        .find(|r| super::cluster_name(r) == cluster)
        .cloned()
}

/// What is wrong with an `aws` upstream, as Gloo's `ProcessUpstream` refuses it: no region, a
/// Secret that is missing or holds no AWS keys, or no credentials at all (no Secret, and
/// Settings enable neither `enableCredentialsDiscovey` nor `serviceAccountCredentials`).
pub(crate) fn validate_upstream(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    spec: &AwsUpstreamSpec,
) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.region.as_deref().unwrap_or("").is_empty() {
        problems.push("spec.aws.region: required (the Lambda endpoint is per region)".to_string());
    }
    match &spec.secret_ref {
        Some(secret) => {
            if let Err(e) = aws_secret(snapshot, reference, secret) {
                problems.push(format!("spec.aws.secretRef: {e}"));
            }
        }
        None => {
            let options = aws_options(snapshot);
            let discovery = options.and_then(|o| o.enable_credentials_discovery) == Some(true);
            let service_account = options.is_some_and(|o| o.service_account_credentials.is_some());
            if !discovery && !service_account {
                problems.push("spec.aws.secretRef: no aws secret provided. consider setting enableCredentialsDiscovey to true or enabling service account credentials if running in EKS (Settings gloo.awsOptions)".to_string());
            }
        }
    }
    problems
}

fn aws_secret(
    snapshot: &ConfigSnapshot,
    reference: &ResourceRef,
    secret: &ResourceRef,
) -> Result<crate::model::secret::AwsSecret, String> {
    let secret = secret.resolved(reference.namespace_or(DEFAULT_NAMESPACE));
    let found = snapshot
        .secrets
        .get(&secret)
        .ok_or_else(|| format!("Secret {secret} not found"))?;
    found
        .object
        .spec
        .aws()
        .map_err(|e| format!("Secret {secret}: {e}"))
}

/// Makes `out` Gloo's Lambda cluster: `LOGICAL_DNS` to the Lambda endpoint (IPv4 only), TLS
/// with its SNI, and the `io.solo.aws_lambda` protocol options.
pub(crate) fn cluster(
    reference: &ResourceRef,
    spec: &AwsUpstreamSpec,
    snapshot: &ConfigSnapshot,
    endpoint: Option<&LambdaEndpoint>,
    out: &mut Cluster,
) {
    let region = spec.region.clone().unwrap_or_default();
    let (address, port, tls, host) = match endpoint {
        Some(e) => (e.host.clone(), e.port, e.tls, e.authority()),
        None => (lambda_host(&region), 443, true, lambda_host(&region)),
    };
    out.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
        cluster::DiscoveryType::LogicalDns as i32,
    ));
    out.eds_cluster_config = None;
    out.dns_lookup_family = cluster::DnsLookupFamily::V4Only as i32;
    out.load_assignment = Some(load_assignment(
        &out.name,
        &[Endpoint::new(address.clone(), u32::from(port))],
    ));
    if tls {
        let context = UpstreamTlsContext {
            common_tls_context: Some(CommonTlsContext::default()),
            sni: address,
            ..Default::default()
        };
        out.transport_socket = Some(TransportSocket {
            name: "envoy.transport_sockets.tls".to_string(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(pack(&context))),
        });
    }
    let secret = spec
        .secret_ref
        .as_ref()
        .and_then(|s| aws_secret(snapshot, reference, s).ok());
    let extension = AwsLambdaProtocolExtension {
        host,
        region,
        access_key: secret
            .as_ref()
            .map(|s| s.access_key.clone())
            .unwrap_or_default(),
        secret_key: secret
            .as_ref()
            .map(|s| s.secret_key.clone())
            .unwrap_or_default(),
        session_token: secret
            .as_ref()
            .and_then(|s| s.session_token.clone())
            .unwrap_or_default(),
        role_arn: spec.role_arn.clone().unwrap_or_default(),
        disable_role_chaining: spec.disable_role_chaining.unwrap_or(false),
    };
    out.typed_extension_protocol_options
        .insert(AWS_LAMBDA_FILTER.to_string(), pack(&extension));
}

/// The `aws` destination spec of a destination, if it has one.
fn aws_spec(d: &Destination) -> Option<&AwsDestinationSpec> {
    match d.destination_spec.as_ref()?.kind() {
        Ok(Some(DestinationSpecRef::Aws(spec))) => Some(spec),
        _ => None,
    }
}

/// Go's `url.QueryEscape`, which Gloo applies to the function name and qualifier.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Gloo's `GenerateAWSLambdaRouteConfig` for a destination: `Ok(None)` when it has no `aws`
/// destination spec (and Settings do not fall back to the first function) or its upstream is
/// missing (reported elsewhere); an error as Gloo's, for a destination Gloo refuses (not an
/// `aws` upstream, no such function, both unwrap modes).
pub(crate) fn route_config(
    snapshot: &ConfigSnapshot,
    d: &Destination,
) -> Result<Option<AwsLambdaPerRoute>, String> {
    // With Settings' `fallbackToFirstFunction`, a destination without a spec is a Lambda
    // destination too when its upstream is an `aws` one (Gloo's `tryingNonExplicitAWSDest`).
    let explicit = aws_spec(d);
    let fallback = aws_options(snapshot).and_then(|o| o.fallback_to_first_function) == Some(true);
    if explicit.is_none() && (!fallback || d.destination_spec.is_some()) {
        return Ok(None);
    }
    let Some(reference) = destination_upstream(d) else {
        return Ok(None);
    };
    let Some(entry) = snapshot.upstreams.get(&reference) else {
        return Ok(None);
    };
    let Some(upstream) = entry.object.spec.aws.as_ref() else {
        if explicit.is_none() {
            return Ok(None);
        }
        return Err(format!("{reference} is not an AWS upstream"));
    };
    // mergo.Merge without override: the upstream's overrides fill what the route left unset.
    let mut destination = explicit.cloned().unwrap_or_default();
    if let Some(overrides) = &upstream.destination_overrides {
        if destination.logical_name.is_empty() {
            destination.logical_name = overrides.logical_name.clone();
        }
        if destination.invocation_style == InvocationStyle::Sync {
            destination.invocation_style = overrides.invocation_style;
        }
        destination.request_transformation |= overrides.request_transformation;
        destination.response_transformation |= overrides.response_transformation;
        destination.unwrap_as_alb |= overrides.unwrap_as_alb;
        destination.unwrap_as_api_gateway |= overrides.unwrap_as_api_gateway;
        destination.wrap_as_api_gateway |= overrides.wrap_as_api_gateway;
    }
    let logical = &destination.logical_name;
    if upstream.lambda_functions.is_empty() {
        return Err(format!(
            "lambda points to upstream with no functions {logical}"
        ));
    }
    let function = upstream
        .lambda_functions
        .iter()
        .find(|f| f.logical_name.as_deref().unwrap_or("") == logical);
    let function = match function {
        Some(f) => f,
        None => {
            let fallback = aws_options(snapshot).and_then(|o| o.fallback_to_first_function);
            match (fallback, upstream.lambda_functions.first()) {
                (Some(true), Some(first)) => first,
                _ => return Err(format!("unknown lambda function {logical}")),
            }
        }
    };
    let mut name = function.lambda_function_name.clone().unwrap_or_default();
    if let Some(account) = upstream.aws_account_id.as_deref().filter(|a| !a.is_empty()) {
        let region = upstream.region.as_deref().unwrap_or("");
        name = format!("arn:aws:lambda:{region}:{account}:function:{name}");
    }
    if destination.response_transformation {
        destination.unwrap_as_api_gateway = true;
    }
    if destination.unwrap_as_alb && destination.unwrap_as_api_gateway {
        return Err(
            "only one of unwrapAsAlb and unwrapAsApiGateway/responseTransformation may be set"
                .to_string(),
        );
    }
    let transformer_config = destination
        .unwrap_as_api_gateway
        .then(|| TypedExtensionConfig {
            name: API_GATEWAY_TRANSFORMER.to_string(),
            typed_config: Some(Any {
                type_url: ApiGatewayTransformation::type_url(),
                value: Vec::new(),
            }),
        });
    Ok(Some(AwsLambdaPerRoute {
        name: query_escape(&name),
        qualifier: query_escape(function.qualifier.as_deref().unwrap_or("")),
        r#async: destination.invocation_style == InvocationStyle::Async,
        unwrap_as_alb: destination.unwrap_as_alb,
        transformer_config,
        ..Default::default()
    }))
}

/// The errors of every `aws` destination of a route action (its single destination, its
/// weighted ones, or its upstream group's), each starting with the destination's field path.
pub(crate) fn check_route(
    snapshot: &ConfigSnapshot,
    action: &crate::model::routing::RouteAction,
    path: impl std::fmt::Display,
) -> Vec<String> {
    use crate::model::routing::RouteDestination;
    // Runs for every route: a single destination that is fine is settled without listing the
    // destinations and writing out their field paths.
    if let Ok(Some(RouteDestination::Single(d))) = action.destination() {
        if route_config(snapshot, d).is_ok() {
            return Vec::new();
        }
    }
    let mut errors = Vec::new();
    for (field, d) in destinations(snapshot, action, &path.to_string()) {
        if let Err(e) = route_config(snapshot, d) {
            errors.push(format!("{field}.destinationSpec.aws: {e}"));
        }
    }
    errors
}

/// The `typed_per_filter_config` entry of a destination's Lambda function (wrapped in an
/// optional `FilterConfig`), if it has one.
pub(crate) fn per_filter_config(
    snapshot: &ConfigSnapshot,
    d: &Destination,
) -> Option<(String, Any)> {
    let config = route_config(snapshot, d).ok()??;
    let wrapped = FilterConfig {
        config: Some(pack(&config)),
        is_optional: true,
        disabled: false,
    };
    Some((AWS_LAMBDA_FILTER.to_string(), pack(&wrapped)))
}

/// The stage-2 transformation of a destination's `requestTransformation` (or
/// `wrapAsApiGateway`): the request, its headers and metadata as an API Gateway event.
pub(crate) fn request_transformation(d: &Destination) -> Option<tpb::RouteTransformation> {
    let spec = aws_spec(d)?;
    if !spec.request_transformation && !spec.wrap_as_api_gateway {
        return None;
    }
    Some(tpb::RouteTransformation {
        stage: AWS_STAGE,
        r#match: Some(tpb::route_transformation::Match::RequestMatch(
            tpb::route_transformation::RequestMatch {
                request_transformation: Some(tpb::Transformation {
                    transformation_type: Some(
                        tpb::transformation::TransformationType::HeaderBodyTransform(
                            tpb::HeaderBodyTransform {
                                add_request_metadata: true,
                            },
                        ),
                    ),
                    log_request_response_info: None,
                }),
                ..Default::default()
            },
        )),
    })
}

/// Whether any route of `hosts` asks for a request transformation.
fn hosts_transform_requests(
    snapshot: &ConfigSnapshot,
    hosts: &[std::sync::Arc<VirtualHostModel>],
) -> bool {
    hosts.iter().any(|h| {
        h.routes.iter().any(|r| match &r.action {
            RouteModelAction::Route(a) => destinations(snapshot, a, "")
                .iter()
                .any(|(_, d)| request_transformation(d).is_some()),
            _ => false,
        })
    })
}

/// The listener filters of Gloo's aws plugin: the stage-2 transformation filter (when a route
/// transforms requests for Lambda) and the Lambda filter (when the snapshot has `aws`
/// upstreams), both optional for stock Envoy.
pub(crate) fn http_filters(
    snapshot: &ConfigSnapshot,
    hosts: &[std::sync::Arc<VirtualHostModel>],
) -> Vec<HttpFilter> {
    if !snapshot
        .upstreams
        .values()
        .any(|u| u.object.spec.aws.is_some())
    {
        return Vec::new();
    }
    let mut filters = Vec::new();
    if hosts_transform_requests(snapshot, hosts) {
        filters.push(HttpFilter {
            name: super::TRANSFORMATION_FILTER.to_string(),
            config_type: Some(http_filter::ConfigType::TypedConfig(pack(
                &tpb::FilterTransformations {
                    stage: AWS_STAGE,
                    log_request_response_info: false,
                },
            ))),
            is_optional: true,
            ..Default::default()
        });
    }
    let options = aws_options(snapshot);
    let mut config = AwsLambdaConfig {
        propagate_original_routing: options
            .and_then(|o| o.propagate_original_routing)
            .unwrap_or(false),
        credential_refresh_delay: options
            .and_then(|o| o.credential_refresh_delay.as_ref())
            .map(duration),
        ..Default::default()
    };
    if let Some(o) = options {
        if let Some(sa) = &o.service_account_credentials {
            config.credentials_fetcher = Some(
                aws_lambda_config::CredentialsFetcher::ServiceAccountCredentials(
                    aws_lambda_config::ServiceAccountCredentials {
                        cluster: sa.cluster.clone().unwrap_or_default(),
                        uri: sa.uri.clone().unwrap_or_default(),
                        timeout: sa.timeout.as_ref().map(duration),
                        region: sa.region.clone().unwrap_or_default(),
                    },
                ),
            );
        } else if let Some(discover) = o.enable_credentials_discovery {
            config.credentials_fetcher = Some(
                aws_lambda_config::CredentialsFetcher::UseDefaultCredentials(BoolValue {
                    value: discover,
                }),
            );
        }
    }
    filters.push(HttpFilter {
        name: AWS_LAMBDA_FILTER.to_string(),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack(&config))),
        is_optional: true,
        ..Default::default()
    });
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_gos_query_escape() {
        assert_eq!(query_escape("$LATEST"), "%24LATEST");
        assert_eq!(
            query_escape("arn:aws:lambda:us-east-1:1:function:f"),
            "arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af"
        );
        assert_eq!(query_escape("a b~c"), "a+b~c");
    }

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = LambdaEndpoint::parse("https://vpce.example").unwrap();
        assert_eq!(
            (e.port(), e.tls(), e.authority()),
            (443, true, "vpce.example".to_string())
        );
        let e = LambdaEndpoint::parse("http://[::1]:9000/").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 9000));
        assert_eq!(e.authority(), "[::1]:9000");
        assert!(LambdaEndpoint::parse("http://:80").is_err());
        assert!(LambdaEndpoint::parse("http://h:x").is_err());
    }
}
