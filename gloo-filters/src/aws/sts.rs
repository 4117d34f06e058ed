//! AWS STS: `AssumeRole` (signed with other credentials) and `AssumeRoleWithWebIdentity`
//! (an OIDC token, such as EKS's projected service account token: IRSA), and the providers
//! built on them.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use super::client::{AwsClient, AwsError, AwsErrorKind};
use super::credentials::{
    CachingProvider, Credentials, CredentialsError, CredentialsFuture, ProvideCredentials,
    SharedCredentialsProvider,
};
use super::env::Env;
use super::time::parse_iso8601;
use super::xml::Element;

/// The STS API version.
pub const STS_VERSION: &str = "2011-06-15";

/// Calls STS in one region (the global endpoint, signed for `us-east-1`, when the region is
/// empty).
#[derive(Debug, Clone)]
pub struct StsClient {
    client: AwsClient,
    region: String,
}

impl StsClient {
    /// STS through `client`, in `region`.
    pub fn new(client: AwsClient, region: impl Into<String>) -> Self {
        StsClient {
            client,
            region: region.into(),
        }
    }

    /// `AssumeRole`: temporary credentials for `role_arn`, signed with `credentials`.
    pub async fn assume_role(
        &self,
        role_arn: &str,
        session_name: &str,
        credentials: &dyn ProvideCredentials,
    ) -> Result<Credentials, AwsError> {
        self.assume(
            "AssumeRole",
            role_arn,
            session_name,
            None,
            Some(credentials),
        )
        .await
    }

    /// `AssumeRoleWithWebIdentity`: temporary credentials for `role_arn` from an OIDC `token`
    /// (unsigned: the token is the proof).
    pub async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &str,
    ) -> Result<Credentials, AwsError> {
        self.assume(
            "AssumeRoleWithWebIdentity",
            role_arn,
            session_name,
            Some(token),
            None,
        )
        .await
    }

    async fn assume(
        &self,
        action: &str,
        role_arn: &str,
        session_name: &str,
        token: Option<&str>,
        credentials: Option<&dyn ProvideCredentials>,
    ) -> Result<Credentials, AwsError> {
        let mut params = vec![
            ("RoleArn".to_string(), role_arn.to_string()),
            ("RoleSessionName".to_string(), session_name.to_string()),
        ];
        if let Some(token) = token {
            params.push(("WebIdentityToken".to_string(), token.to_string()));
        }
        let answer = self
            .client
            .query(
                "sts",
                &self.region,
                STS_VERSION,
                action,
                &params,
                credentials,
            )
            .await?;
        credentials_of(&format!("sts {action}"), &answer)
    }
}

/// The `Credentials` element of an `AssumeRole*Response`.
pub fn credentials_of(what: &str, answer: &Element) -> Result<Credentials, AwsError> {
    let bad = |detail: &str| {
        AwsError::new(
            AwsErrorKind::Answer,
            format!("{what}: the answer has {detail}"),
        )
    };
    let credentials = answer
        .find("Credentials")
        .ok_or_else(|| bad("no Credentials"))?;
    let field = |name: &str| {
        credentials
            .child_text(name)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad(&format!("no Credentials.{name}")))
    };
    let mut out = Credentials::new(field("AccessKeyId")?, field("SecretAccessKey")?)
        .with_session_token(field("SessionToken")?);
    if let Some(expiration) = credentials.child_text("Expiration") {
        let expires = parse_iso8601(expiration)
            .ok_or_else(|| bad(&format!("an unreadable Expiration {expiration:?}")))?;
        out = out.with_expiry(expires);
    }
    Ok(out)
}

/// A session name for STS: `gloo-<unix seconds>` (what AWS records in CloudTrail).
pub(crate) fn session_name() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("gloo-{secs}")
}

/// Credentials of a role assumed with another provider's credentials (`AssumeRole`), cached
/// until shortly before they expire. Gloo's `roleArn` on an `awsEc2` upstream.
#[derive(Debug)]
pub struct AssumeRoleProvider {
    cache: CachingProvider,
}

#[derive(Debug)]
struct AssumeRole {
    sts: StsClient,
    role_arn: String,
    base: SharedCredentialsProvider,
}

impl ProvideCredentials for AssumeRole {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            self.sts
                .assume_role(&self.role_arn, &session_name(), self.base.as_ref())
                .await
                .map_err(|e| CredentialsError::new(format!("assuming role {}: {e}", self.role_arn)))
        })
    }
}

impl AssumeRoleProvider {
    /// Assumes `role_arn` through `sts`, signing with `base`'s credentials.
    pub fn new(
        sts: StsClient,
        role_arn: impl Into<String>,
        base: SharedCredentialsProvider,
    ) -> Self {
        AssumeRoleProvider {
            cache: CachingProvider::new(AssumeRole {
                sts,
                role_arn: role_arn.into(),
                base,
            }),
        }
    }
}

impl ProvideCredentials for AssumeRoleProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        self.cache.credentials()
    }
}

/// Credentials from an OIDC token file through `AssumeRoleWithWebIdentity` (EKS IAM roles for
/// service accounts): the token is read again on every refresh, as the kubelet rotates it.
/// Cached until shortly before the credentials expire.
#[derive(Debug)]
pub struct WebIdentityProvider {
    cache: CachingProvider,
}

#[derive(Debug)]
struct WebIdentity {
    sts: StsClient,
    role_arn: String,
    token_file: PathBuf,
    session_name: Option<String>,
}

impl ProvideCredentials for WebIdentity {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let token = tokio::fs::read_to_string(&self.token_file)
                .await
                .map_err(|e| {
                    CredentialsError::new(format!(
                        "web identity token file {}: {e}",
                        self.token_file.display()
                    ))
                })?;
            let token = token.trim();
            if token.is_empty() {
                return Err(CredentialsError::new(format!(
                    "web identity token file {} is empty",
                    self.token_file.display()
                )));
            }
            let session = self.session_name.clone().unwrap_or_else(session_name);
            self.sts
                .assume_role_with_web_identity(&self.role_arn, &session, token)
                .await
                .map_err(|e| {
                    CredentialsError::new(format!(
                        "assuming role {} with web identity: {e}",
                        self.role_arn
                    ))
                })
        })
    }
}

impl WebIdentityProvider {
    /// Assumes `role_arn` with the token in `token_file`.
    pub fn new(
        sts: StsClient,
        role_arn: impl Into<String>,
        token_file: impl Into<PathBuf>,
    ) -> Self {
        WebIdentityProvider {
            cache: CachingProvider::new(WebIdentity {
                sts,
                role_arn: role_arn.into(),
                token_file: token_file.into(),
                session_name: None,
            }),
        }
    }

    /// What the environment configures: `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`
    /// (optionally `AWS_ROLE_SESSION_NAME`), with STS in `AWS_REGION` (the global endpoint
    /// without one); `None` unless both are set.
    pub fn from_env(env: &Env, client: AwsClient) -> Option<Self> {
        let role_arn = env.get("AWS_ROLE_ARN")?;
        Self::from_env_with_role(env, client, role_arn)
    }

    /// The environment's token file (and session name) with another role: Gloo lets an
    /// upstream's `roleArn` replace `AWS_ROLE_ARN`. `None` without `AWS_WEB_IDENTITY_TOKEN_FILE`.
    pub fn from_env_with_role(
        env: &Env,
        client: AwsClient,
        role_arn: impl Into<String>,
    ) -> Option<Self> {
        let token_file = env.get("AWS_WEB_IDENTITY_TOKEN_FILE")?;
        let sts = StsClient::new(client, env.region().unwrap_or_default());
        Some(WebIdentityProvider {
            cache: CachingProvider::new(WebIdentity {
                sts,
                role_arn: role_arn.into(),
                token_file: token_file.into(),
                session_name: env.get("AWS_ROLE_SESSION_NAME"),
            }),
        })
    }
}

impl ProvideCredentials for WebIdentityProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        self.cache.credentials()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credentials_of_an_assume_role_answer() {
        // The example answer of STS's AssumeRole API reference.
        let answer = Element::parse(
            r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
  <SourceIdentity>Alice</SourceIdentity>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/TestAR</Arn>
      <AssumedRoleId>ARO123EXAMPLE123:TestAR</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW</SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#,
        )
        .unwrap();
        let c = credentials_of("sts AssumeRole", &answer).unwrap();
        assert_eq!(c.access_key_id(), "ASIAIOSFODNN7EXAMPLE");
        assert!(c.session_token().unwrap().starts_with("AQoDYXdzEPT"));
        assert_eq!(c.expires(), parse_iso8601("2019-11-09T13:34:41Z"));
        let empty = Element::parse("<AssumeRoleResponse/>").unwrap();
        assert!(credentials_of("x", &empty).is_err());
    }
}
