//! The credentials an upstream's AWS calls are signed with: its `secretRef`'s keys, else the
//! default chain of the environment, and for EC2 a `roleArn` assumed with them (Gloo's
//! `CredentialSpec`); providers are kept per (secret, role, region), so assumed-role
//! credentials are reused until they near expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::runner::lock;
use gloo_core::model::secret::AwsSecret;
use gloo_core::model::{Resource, ResourceRef};
use gloo_core::source::SourceSnapshot;
use gloo_filters::aws::{
    default_provider, AssumeRoleProvider, AwsClient, Credentials, Env, SharedCredentialsProvider,
    StsClient, WebIdentityProvider,
};

/// What an upstream's calls are signed with: Gloo's `CredentialSpec` (upstreams sharing one
/// share a single `DescribeInstances` / `ListFunctions` run).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct CredentialKey {
    /// The AWS region.
    pub(crate) region: String,
    /// The Secret (namespace resolved), if any.
    pub(crate) secret: Option<ResourceRef>,
    /// The role to assume, if any.
    pub(crate) role_arn: Option<String>,
}

/// How a role ARN is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(not(all(feature = "ec2", feature = "lambda")), allow(dead_code))]
pub(crate) enum RoleUse {
    /// EC2: `AssumeRole` with the base credentials (Gloo's `stscreds.NewCredentials`).
    AssumeRole,
    /// Lambda discovery: only with web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` and
    /// `AWS_ROLE_ARN` set), replacing `AWS_ROLE_ARN`, as Gloo's FDS does.
    WebIdentity,
}

/// Builds and keeps the providers of credential keys.
#[derive(Debug)]
pub(crate) struct CredentialSources {
    client: AwsClient,
    env: Env,
    role_use: RoleUse,
    default: Mutex<Option<SharedCredentialsProvider>>,
    providers: Mutex<HashMap<CredentialKey, (Option<AwsSecret>, SharedCredentialsProvider)>>,
}

impl CredentialSources {
    pub(crate) fn new(client: AwsClient, env: Env, role_use: RoleUse) -> Self {
        CredentialSources {
            client,
            env,
            role_use,
            default: Mutex::new(None),
            providers: Mutex::new(HashMap::new()),
        }
    }

    fn default_chain(&self) -> SharedCredentialsProvider {
        let mut default = lock(&self.default);
        default
            .get_or_insert_with(|| default_provider(&self.env, self.client.clone()))
            .clone()
    }

    /// The provider for `key`, reading its Secret from `config`. An error names the Secret
    /// and what is wrong with it.
    pub(crate) fn provider(
        &self,
        key: &CredentialKey,
        config: &SourceSnapshot,
    ) -> Result<SharedCredentialsProvider, String> {
        let secret = match &key.secret {
            None => None,
            Some(reference) => Some(aws_secret(config, reference)?),
        };
        let mut providers = lock(&self.providers);
        if let Some((cached_secret, provider)) = providers.get(key) {
            if *cached_secret == secret {
                return Ok(provider.clone());
            }
        }
        let base: SharedCredentialsProvider = match &secret {
            Some(s) => {
                let mut credentials = Credentials::new(s.access_key.clone(), s.secret_key.clone());
                if let Some(token) = &s.session_token {
                    credentials = credentials.with_session_token(token.clone());
                }
                Arc::new(credentials)
            }
            None => self.default_chain(),
        };
        let provider: SharedCredentialsProvider = match self.role_use {
            RoleUse::AssumeRole => match &key.role_arn {
                None => base,
                Some(role) => Arc::new(AssumeRoleProvider::new(
                    StsClient::new(self.client.clone(), key.region.clone()),
                    role.clone(),
                    base,
                )),
            },
            // Gloo's FDS: with a web identity token and AWS_ROLE_ARN in the environment, the
            // upstream's roleArn (else AWS_ROLE_ARN) is assumed with the token, whatever the
            // Secret; otherwise the Secret (or the default chain) signs and roleArn is unused.
            RoleUse::WebIdentity => {
                let web = self.env.get("AWS_ROLE_ARN").and_then(|env_role| {
                    let role = key.role_arn.clone().unwrap_or(env_role);
                    WebIdentityProvider::from_env_with_role(&self.env, self.client.clone(), role)
                });
                match web {
                    Some(web) => Arc::new(web),
                    None => base,
                }
            }
        };
        providers.insert(key.clone(), (secret, provider.clone()));
        Ok(provider)
    }
}

/// The AWS keys of the Secret `reference` names in `config`.
pub(crate) fn aws_secret(
    config: &SourceSnapshot,
    reference: &ResourceRef,
) -> Result<AwsSecret, String> {
    let secret = config
        .resources
        .iter()
        .find_map(|r| match &r.resource {
            Resource::Secret(s)
                if s.metadata.name == reference.name
                    && s.metadata.namespace() == reference.namespace_or("") =>
            {
                Some(s.clone())
            }
            _ => None,
        })
        .ok_or_else(|| format!("Secret {reference} not found"))?;
    secret
        .spec
        .aws()
        .map_err(|e| format!("Secret {reference}: {e}"))
}
