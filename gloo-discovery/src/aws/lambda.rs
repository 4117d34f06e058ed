//! [`LambdaDiscovery`]: Gloo's AWS Lambda function discovery, filling the `lambdaFunctions`
//! of every `aws` upstream in force from Lambda `ListFunctions`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use gloo_core::model::settings::SettingsSpec;
use gloo_core::model::upstream::{LambdaFunctionSpec, UpstreamSpec};
use gloo_core::model::ResourceRef;
use gloo_filters::aws::sigv4::uri_encode;
use gloo_filters::aws::{
    service_error, AwsClient, AwsError, AwsErrorKind, Env, ProvideCredentials,
    SharedCredentialsProvider,
};
use http::{Method, Request};
use serde::Deserialize;

use super::credentials::{CredentialKey, RoleUse};
use super::{Groups, Polling};
use crate::plugin::{
    BoxFuture, Discovery, DiscoveryContext, DiscoveryError, Functions, Publisher, Upstream,
    Upstreams,
};

/// The label that turns function discovery off (`disabled`) or on (`enabled`) for one
/// upstream, Gloo's `FdsLabelKey`.
pub const FDS_LABEL: &str = "discovery.solo.io/function_discovery";
/// Namespaces whose upstreams Gloo's function discovery skips unless labelled `enabled`.
const SKIPPED_NAMESPACES: &[&str] = &["kube-system", "kube-public"];

/// One function version, as `ListFunctions` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LambdaFunction {
    /// The function's name.
    pub function_name: String,
    /// `$LATEST` or a published version number.
    #[serde(default)]
    pub version: String,
    /// The function (version) ARN.
    #[serde(default)]
    pub function_arn: String,
}

impl LambdaFunction {
    /// The function as Gloo's FDS writes it into an upstream: `logicalName` `<name>:<version>`
    /// (just `<name>` for `$LATEST`), `lambdaFunctionName` the name, `qualifier` the version.
    ///
    /// ```
    /// use gloo_discovery::aws::LambdaFunction;
    /// let f = LambdaFunction { function_name: "echo".into(), version: "2".into(), function_arn: String::new() };
    /// assert_eq!(f.spec().logical_name.as_deref(), Some("echo:2"));
    /// let latest = LambdaFunction { version: "$LATEST".into(), ..f };
    /// assert_eq!(latest.spec().logical_name.as_deref(), Some("echo"));
    /// assert_eq!(latest.spec().qualifier.as_deref(), Some("$LATEST"));
    /// ```
    pub fn spec(&self) -> LambdaFunctionSpec {
        let logical = if self.version == "$LATEST" {
            self.function_name.clone()
        } else {
            format!("{}:{}", self.function_name, self.version)
        };
        LambdaFunctionSpec {
            logical_name: Some(logical),
            lambda_function_name: Some(self.function_name.clone()),
            qualifier: Some(self.version.clone()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListFunctionsPage {
    #[serde(default)]
    functions: Vec<LambdaFunction>,
    #[serde(default)]
    next_marker: Option<String>,
}

/// `ListFunctions` with `FunctionVersion=ALL`: every version of every function the
/// credentials can see in `region`, every page (`NextMarker`), `page_size` per page (Lambda
/// takes 1 to 50; `None`: Lambda's default).
pub async fn list_functions(
    client: &AwsClient,
    region: &str,
    credentials: &dyn ProvideCredentials,
    page_size: Option<u32>,
) -> Result<Vec<LambdaFunction>, AwsError> {
    let mut functions = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut uri = "/2015-03-31/functions/?FunctionVersion=ALL".to_string();
        if let Some(size) = page_size {
            uri.push_str(&format!("&MaxItems={}", size.clamp(1, 50)));
        }
        if let Some(marker) = &marker {
            uri.push_str("&Marker=");
            uri.push_str(&uri_encode(marker, true));
        }
        let request = Request::builder()
            .method(Method::GET)
            .uri(uri.as_str())
            .body(Bytes::new())
            .map_err(|e| {
                AwsError::new(AwsErrorKind::Config, format!("ListFunctions {uri}: {e}"))
            })?;
        let response = client
            .send("lambda", region, request, Some(credentials))
            .await?;
        let what = "lambda ListFunctions";
        if !response.status().is_success() {
            let body = String::from_utf8_lossy(response.body());
            return Err(service_error(
                what,
                response.status(),
                response.headers(),
                &body,
            ));
        }
        let page: ListFunctionsPage = serde_json::from_slice(response.body())
            .map_err(|e| answer_error(format!("{what}: the answer is not the API's JSON: {e}")))?;
        functions.extend(page.functions);
        marker = page.next_marker.filter(|m| !m.is_empty());
        if marker.is_none() {
            return Ok(functions);
        }
    }
}

fn answer_error(message: String) -> AwsError {
    AwsError::new(AwsErrorKind::Answer, message)
}

/// Gloo's AWS Lambda function discovery (`projects/discovery/pkg/fds/discoveries/aws`) as a
/// [`Discovery`] plugin: the `lambdaFunctions` of every `aws` upstream in force, user-written
/// or discovered, are replaced by the functions `ListFunctions` finds (every version: see
/// [`LambdaFunction::spec`] for the names), sorted by logical name, as Gloo's FDS rewrites
/// them. Gloo's FDS selection applies: an upstream labelled
/// `discovery.solo.io/function_discovery: disabled` keeps its own list, as do upstreams in
/// `kube-system` and `kube-public` unless labelled `enabled`.
///
/// Upstreams are grouped by region (the upstream's, else `AWS_REGION`), `secretRef` and
/// `roleArn`, and each group is listed once per refresh. Credentials are as Gloo's FDS takes
/// them: with `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` in the environment, the
/// upstream's `roleArn` (else `AWS_ROLE_ARN`) is assumed with the web identity token;
/// otherwise the `secretRef`'s keys sign, or the environment's default chain.
///
/// A group whose listing fails keeps the functions it last found and is asked again after a
/// backoff (1 s, doubling, at most the refresh interval).
///
/// **Deviation from Gloo.** Gloo's FDS lists each upstream's functions every second; gloo
/// lists each group every refresh interval (30 s by default, [`from_settings`](Self::from_settings)
/// takes a longer `refreshRate`), so a new function takes up to that long to appear.
#[derive(Debug, Clone)]
pub struct LambdaDiscovery {
    polling: Polling,
}

super::polling_builders!(LambdaDiscovery, "functions");

impl LambdaDiscovery {
    /// Functions per `ListFunctions` page (1 to 50; Lambda's default without).
    pub fn page_size(mut self, size: u32) -> Self {
        self.polling.page_size = Some(size.clamp(1, 50));
        self
    }
}

/// Whether Gloo's function discovery (blacklist mode, the default; aws upstreams are
/// selected the same way in whitelist mode) selects `upstream`.
fn selected(upstream: &Upstream) -> bool {
    let label = upstream.metadata.labels.get(FDS_LABEL).map(String::as_str);
    if label == Some("disabled") {
        return false;
    }
    !SKIPPED_NAMESPACES.contains(&upstream.metadata.namespace()) || label == Some("enabled")
}

impl Discovery for LambdaDiscovery {
    fn name(&self) -> &str {
        "lambda"
    }

    fn resolves(&self, upstream: &UpstreamSpec) -> bool {
        upstream.aws.is_some()
    }

    fn run(
        self: std::sync::Arc<Self>,
        context: DiscoveryContext,
    ) -> BoxFuture<'static, Result<(), DiscoveryError>> {
        Box::pin(async move {
            let polling = &self.polling;
            let list = |key: CredentialKey, provider: SharedCredentialsProvider| async move {
                let functions = list_functions(
                    &polling.client,
                    &key.region,
                    provider.as_ref(),
                    polling.page_size,
                )
                .await?;
                let mut specs: Vec<LambdaFunctionSpec> =
                    functions.iter().map(LambdaFunction::spec).collect();
                specs.sort_by(|a, b| a.logical_name.cmp(&b.logical_name));
                Ok(specs)
            };
            let publish =
                |publisher: &Publisher,
                 groups: &Groups<()>,
                 last: &BTreeMap<CredentialKey, Vec<LambdaFunctionSpec>>| {
                    let functions: BTreeMap<ResourceRef, Functions> = groups
                        .iter()
                        .filter_map(|(key, members)| Some((last.get(key)?, members)))
                        .flat_map(|(specs, members)| {
                            members
                                .iter()
                                .map(move |(r, ())| (r.clone(), Functions::Lambda(specs.clone())))
                        })
                        .collect();
                    publisher.set_functions(functions);
                };
            let group = |tracked: &Upstreams| self.group(tracked);
            polling
                .run(
                    context,
                    RoleUse::WebIdentity,
                    "Lambda functions",
                    group,
                    list,
                    publish,
                )
                .await;
            Ok(())
        })
    }
}

impl LambdaDiscovery {
    /// The selected `aws` upstreams by region and credentials.
    fn group(&self, tracked: &Upstreams) -> Groups<()> {
        let mut groups = Groups::new();
        for (reference, upstream) in tracked.iter() {
            let Some(spec) = upstream.spec.aws.as_ref().filter(|_| selected(upstream)) else {
                continue;
            };
            let key = CredentialKey {
                region: spec
                    .region
                    .clone()
                    .filter(|r| !r.is_empty())
                    .or_else(|| self.polling.env.region())
                    .unwrap_or_default(),
                secret: spec
                    .secret_ref
                    .as_ref()
                    .map(|s| s.resolved(reference.namespace_or(""))),
                role_arn: spec.role_arn.clone().filter(|r| !r.is_empty()),
            };
            groups.entry(key).or_default().push((reference.clone(), ()));
        }
        groups
    }
}
