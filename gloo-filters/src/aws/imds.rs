//! Credentials of the machine or container gloo runs on: EC2 instance metadata (IMDSv2) and
//! ECS / EKS Pod Identity container credentials; and the default chain of every source.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri};
use serde::Deserialize;

use super::client::{AwsClient, HttpTransport};
use super::credentials::{
    CachingProvider, ChainProvider, Credentials, CredentialsError, CredentialsFuture,
    EnvironmentProvider, ProfileProvider, ProvideCredentials, SharedCredentialsProvider,
};
use super::env::Env;
use super::sts::WebIdentityProvider;
use super::time::parse_iso8601;

/// The instance metadata service's default address.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The IMDSv2 session token lifetime asked for (6 hours, the most IMDS gives).
const TOKEN_TTL_SECONDS: &str = "21600";

/// EC2 instance role credentials from the instance metadata service, IMDSv2: a session token
/// from `PUT /latest/api/token`, then the role's name and credentials under
/// `/latest/meta-data/iam/security-credentials/`. As the AWS SDKs do, an IMDS that refuses
/// tokens with `404`/`405` (IMDSv1 only) is asked without one; `403` (IMDS disabled for the
/// instance) is an error.
///
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT` moves it; `AWS_EC2_METADATA_DISABLED=true` turns it
/// off. Each call has a 1 s timeout, so a chain outside EC2 moves on quickly.
#[derive(Debug, Clone)]
pub struct ImdsProvider {
    transport: Arc<dyn HttpTransport>,
    endpoint: String,
    disabled: bool,
}

/// The JSON both IMDS and the container endpoints answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

impl MetadataCredentials {
    /// The credentials of a `200 OK` answer of `source`.
    fn from_answer(
        source: &str,
        answer: &Response<Bytes>,
    ) -> Result<Credentials, CredentialsError> {
        if answer.status() != StatusCode::OK {
            return Err(CredentialsError::new(format!(
                "{source}: answered {}",
                answer.status()
            )));
        }
        Self::parse(source, answer.body())
    }

    fn parse(source: &str, body: &[u8]) -> Result<Credentials, CredentialsError> {
        let parsed: MetadataCredentials = serde_json::from_slice(body).map_err(|e| {
            CredentialsError::new(format!("{source}: not a credentials document: {e}"))
        })?;
        if let Some(code) = parsed.code.as_deref().filter(|c| *c != "Success") {
            return Err(CredentialsError::new(format!("{source}: Code {code}")));
        }
        let mut out = Credentials::new(parsed.access_key_id, parsed.secret_access_key);
        if let Some(token) = parsed.token {
            out = out.with_session_token(token);
        }
        if let Some(expiration) = parsed.expiration {
            let expires = parse_iso8601(&expiration).ok_or_else(|| {
                CredentialsError::new(format!("{source}: unreadable Expiration {expiration:?}"))
            })?;
            out = out.with_expiry(expires);
        }
        Ok(out)
    }
}

impl ImdsProvider {
    /// Instance metadata as `env` configures it, through `transport`.
    pub fn new(env: &Env, transport: Arc<dyn HttpTransport>) -> Self {
        ImdsProvider {
            transport,
            endpoint: env
                .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .unwrap_or_else(|| IMDS_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            disabled: env
                .get("AWS_EC2_METADATA_DISABLED")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        header: Option<(&'static str, &str)>,
    ) -> Result<Response<Bytes>, CredentialsError> {
        let url = format!("{}{path}", self.endpoint);
        let uri: Uri = url
            .parse()
            .map_err(|e| CredentialsError::new(format!("instance metadata {url}: {e}")))?;
        let mut request = Request::builder().method(method).uri(uri);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        let request = request
            .body(Bytes::new())
            .map_err(|e| CredentialsError::new(format!("instance metadata {url}: {e}")))?;
        match tokio::time::timeout(Duration::from_secs(1), self.transport.send(request)).await {
            Ok(Ok(response)) => Ok(response),
            // No instance metadata here: not on EC2 (a chain moves on).
            Ok(Err(e)) => Err(CredentialsError::not_configured(format!(
                "instance metadata {url}: {e}"
            ))),
            Err(_) => Err(CredentialsError::not_configured(format!(
                "instance metadata {url}: no answer within 1s"
            ))),
        }
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        if self.disabled {
            return Err(CredentialsError::not_configured(
                "instance metadata: AWS_EC2_METADATA_DISABLED is true",
            ));
        }
        let token = self
            .call(
                Method::PUT,
                "/latest/api/token",
                Some(("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS)),
            )
            .await?;
        let token = match token.status() {
            StatusCode::OK => Some(String::from_utf8_lossy(token.body()).trim().to_string()),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => None,
            status => {
                return Err(CredentialsError::new(format!(
                    "instance metadata: PUT /latest/api/token answered {status}"
                )))
            }
        };
        let auth = token.as_deref().map(|t| ("x-aws-ec2-metadata-token", t));
        const ROLES: &str = "/latest/meta-data/iam/security-credentials/";
        let roles = self.call(Method::GET, ROLES, auth).await?;
        if roles.status() == StatusCode::NOT_FOUND {
            return Err(CredentialsError::not_configured(
                "instance metadata: the instance has no IAM role",
            ));
        }
        if roles.status() != StatusCode::OK {
            return Err(CredentialsError::new(format!(
                "instance metadata: GET {ROLES} answered {}",
                roles.status()
            )));
        }
        let body = String::from_utf8_lossy(roles.body()).to_string();
        let role = body.lines().next().unwrap_or("").trim();
        if role.is_empty() {
            return Err(CredentialsError::not_configured(
                "instance metadata: the instance has no IAM role",
            ));
        }
        let path = format!("{ROLES}{role}");
        let answer = self.call(Method::GET, &path, auth).await?;
        MetadataCredentials::from_answer(&format!("instance metadata GET {path}"), &answer)
    }
}

impl ProvideCredentials for ImdsProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

/// Container credentials (ECS task roles, EKS Pod Identity):
/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (under `http://169.254.170.2`) or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with `AWS_CONTAINER_AUTHORIZATION_TOKEN` (or the
/// token in `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`) as the `authorization` header.
#[derive(Debug, Clone)]
pub struct ContainerProvider {
    transport: Arc<dyn HttpTransport>,
    env: Env,
}

impl ContainerProvider {
    /// Container credentials as `env` configures them.
    pub fn new(env: &Env, transport: Arc<dyn HttpTransport>) -> Self {
        ContainerProvider {
            transport,
            env: env.clone(),
        }
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let url = match (
            self.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            self.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => format!("http://169.254.170.2{relative}"),
            (None, Some(full)) => full,
            (None, None) => {
                return Err(CredentialsError::not_configured(
                    "container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI are not set",
                ))
            }
        };
        let token = match (
            self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        ) {
            (Some(file), _) => Some(
                tokio::fs::read_to_string(&file)
                    .await
                    .map_err(|e| {
                        CredentialsError::new(format!("container credentials token {file}: {e}"))
                    })?
                    .trim()
                    .to_string(),
            ),
            (None, token) => token,
        };
        let mut request = Request::get(url.as_str());
        if let Some(token) = &token {
            request = request.header(http::header::AUTHORIZATION, token.as_str());
        }
        let request = request
            .body(Bytes::new())
            .map_err(|e| CredentialsError::new(format!("container credentials {url}: {e}")))?;
        let answer = tokio::time::timeout(Duration::from_secs(5), self.transport.send(request))
            .await
            .map_err(|_| {
                CredentialsError::new(format!("container credentials {url}: no answer within 5s"))
            })?
            .map_err(|e| CredentialsError::new(format!("container credentials {url}: {e}")))?;
        MetadataCredentials::from_answer(&format!("container credentials {url}"), &answer)
    }
}

impl ProvideCredentials for ContainerProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(self.fetch())
    }
}

/// The standard credential chain of the AWS SDKs, cached: the environment
/// (`AWS_ACCESS_KEY_ID`...), the shared profile, web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`
/// and `AWS_ROLE_ARN`: EKS IRSA), container credentials, then EC2 instance metadata
/// (IMDSv2). STS and the metadata services are reached through `client`.
///
/// ```
/// use gloo_filters::aws::{default_provider, AwsClient, Env, ProvideCredentials};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let env = Env::from_vars([
///     ("AWS_ACCESS_KEY_ID", "AKID"),
///     ("AWS_SECRET_ACCESS_KEY", "secret"),
/// ]);
/// let provider = default_provider(&env, AwsClient::new().unwrap());
/// assert_eq!(provider.credentials().await.unwrap().access_key_id(), "AKID");
/// # }
/// ```
pub fn default_provider(env: &Env, client: AwsClient) -> SharedCredentialsProvider {
    let transport = client.transport().clone();
    let mut chain = ChainProvider::new()
        .or_else("environment", EnvironmentProvider::new(env.clone()))
        .or_else("profile", ProfileProvider::new(env.clone()));
    if let Some(web_identity) = WebIdentityProvider::from_env(env, client) {
        chain = chain.or_else("web identity", web_identity);
    }
    chain = chain
        .or_else("container", ContainerProvider::new(env, transport.clone()))
        .or_else("instance metadata", ImdsProvider::new(env, transport));
    Arc::new(CachingProvider::new(chain))
}

/// The default chain of the process's environment, through `client`.
pub fn default_provider_from_process(client: AwsClient) -> SharedCredentialsProvider {
    default_provider(&Env::from_process(), client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_metadata_credentials_document() {
        let body = br#"{"Code":"Success","LastUpdated":"2012-04-26T16:39:16Z","Type":"AWS-HMAC","AccessKeyId":"ASIAIOSFODNN7EXAMPLE","SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Token":"token","Expiration":"2017-05-17T15:09:54Z"}"#;
        let c = MetadataCredentials::parse("imds", body).unwrap();
        assert_eq!(c.access_key_id(), "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(c.session_token(), Some("token"));
        assert!(c.expires().is_some());
        let failed =
            br#"{"Code":"AssumeRoleUnauthorizedAccess","AccessKeyId":"","SecretAccessKey":""}"#;
        assert!(MetadataCredentials::parse("imds", failed).is_err());
    }
}
