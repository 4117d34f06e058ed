//! AWS credentials and where they come from: [`ProvideCredentials`], static keys, the
//! environment, shared profiles, a chain of providers, and a cache that refreshes temporary
//! credentials before they expire.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::env::{Env, Profiles};

/// A boxed, sendable future, as [`ProvideCredentials::credentials`] returns.
pub type CredentialsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credentials, CredentialsError>> + Send + 'a>>;

/// An access key pair, with the session token and expiry of temporary credentials. The
/// secret and the token never appear in `Debug` output.
///
/// ```
/// use gloo_filters::aws::Credentials;
/// let credentials = Credentials::new("AKID", "s3cr3t").with_session_token("t0ken");
/// assert_eq!(credentials.session_token(), Some("t0ken"));
/// let logged = format!("{credentials:?}");
/// assert!(!logged.contains("s3cr3t") && !logged.contains("t0ken"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expires: Option<SystemTime>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

impl Credentials {
    /// Long-term credentials: an access key ID and its secret.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: impl Into<String>) -> Self {
        Credentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            expires: None,
        }
    }

    /// With the session token of temporary credentials.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.session_token = (!token.is_empty()).then_some(token);
        self
    }

    /// With the time they expire.
    pub fn with_expiry(mut self, expires: SystemTime) -> Self {
        self.expires = Some(expires);
        self
    }

    /// The access key ID.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The session token, for temporary credentials.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    /// When they expire (`None`: never, as far as gloo knows).
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
}

/// Why no credentials could be had. The message names the source (a file, a variable, a
/// URL).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct CredentialsError {
    message: String,
    /// False when the source is simply not configured here (no variable, no file): a chain
    /// then tries the next source.
    configured: bool,
}

impl CredentialsError {
    /// The source is configured but failed (a chain stops here and reports it).
    pub fn new(message: impl fmt::Display) -> Self {
        CredentialsError {
            message: message.to_string(),
            configured: true,
        }
    }

    /// The source is not configured (a chain goes on to the next).
    pub fn not_configured(message: impl fmt::Display) -> Self {
        CredentialsError {
            message: message.to_string(),
            configured: false,
        }
    }

    /// Whether the source was configured (its failure is then not a reason to try another).
    pub fn is_configured(&self) -> bool {
        self.configured
    }
}

/// A source of credentials. Object safe: providers are held as
/// [`SharedCredentialsProvider`]s and composed (a chain, a cache, a role assumed with another
/// provider's credentials).
///
/// ```
/// use gloo_filters::aws::{Credentials, ProvideCredentials};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // Credentials provide themselves.
/// let fixed = Credentials::new("AKID", "secret");
/// assert_eq!(fixed.credentials().await.unwrap().access_key_id(), "AKID");
/// # }
/// ```
pub trait ProvideCredentials: Send + Sync + fmt::Debug + 'static {
    /// The current credentials.
    fn credentials(&self) -> CredentialsFuture<'_>;
}

/// A provider shared by whoever signs with it.
pub type SharedCredentialsProvider = Arc<dyn ProvideCredentials>;

impl ProvideCredentials for Credentials {
    fn credentials(&self) -> CredentialsFuture<'_> {
        let credentials = self.clone();
        Box::pin(async move { Ok(credentials) })
    }
}

impl<P: ProvideCredentials + ?Sized> ProvideCredentials for Arc<P> {
    fn credentials(&self) -> CredentialsFuture<'_> {
        (**self).credentials()
    }
}

/// `AWS_ACCESS_KEY_ID` (or `AWS_ACCESS_KEY`), `AWS_SECRET_ACCESS_KEY` (or `AWS_SECRET_KEY`),
/// `AWS_SESSION_TOKEN`, read from an [`Env`].
#[derive(Debug, Clone)]
pub struct EnvironmentProvider {
    env: Env,
}

impl EnvironmentProvider {
    /// Reads `env`.
    pub fn new(env: Env) -> Self {
        EnvironmentProvider { env }
    }
}

impl ProvideCredentials for EnvironmentProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let access = self
                .env
                .get("AWS_ACCESS_KEY_ID")
                .or_else(|| self.env.get("AWS_ACCESS_KEY"));
            let secret = self
                .env
                .get("AWS_SECRET_ACCESS_KEY")
                .or_else(|| self.env.get("AWS_SECRET_KEY"));
            match (access, secret) {
                (Some(access), Some(secret)) => {
                    let mut credentials = Credentials::new(access, secret);
                    if let Some(token) = self.env.get("AWS_SESSION_TOKEN") {
                        credentials = credentials.with_session_token(token);
                    }
                    Ok(credentials)
                }
                (None, None) => Err(CredentialsError::not_configured(
                    "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set",
                )),
                (Some(_), None) => Err(CredentialsError::new(
                    "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
                )),
                (None, Some(_)) => Err(CredentialsError::new(
                    "environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
                )),
            }
        })
    }
}

/// The static keys of a profile in the shared files: `aws_access_key_id`,
/// `aws_secret_access_key`, `aws_session_token` of profile `AWS_PROFILE` (else `default`) in
/// `~/.aws/credentials` (`AWS_SHARED_CREDENTIALS_FILE`) or `~/.aws/config`
/// (`AWS_CONFIG_FILE`, `[profile <name>]` sections); the credentials file wins.
///
/// Profiles that assume a role (`role_arn` + `source_profile`), run a process
/// (`credential_process`) or use SSO are not supported: such a profile is an error naming the
/// key, never a silent fallback to other credentials.
#[derive(Debug, Clone)]
pub struct ProfileProvider {
    env: Env,
}

impl ProfileProvider {
    /// Reads the files and profile `env` names.
    pub fn new(env: Env) -> Self {
        ProfileProvider { env }
    }
}

impl ProvideCredentials for ProfileProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let profiles = Profiles::load(&self.env)
                .await
                .map_err(CredentialsError::new)?;
            let name = self.env.profile_name();
            let Some(profile) = profiles.get(&name) else {
                return Err(CredentialsError::not_configured(format!(
                    "profile {name:?}: not found in {}",
                    profiles.describe_files()
                )));
            };
            for unsupported in [
                "role_arn",
                "credential_process",
                "sso_start_url",
                "sso_session",
            ] {
                if profile.contains_key(unsupported) {
                    return Err(CredentialsError::new(format!(
                        "profile {name:?}: `{unsupported}` is not supported; give the profile static keys or use the environment, web identity or instance metadata"
                    )));
                }
            }
            match (
                profile.get("aws_access_key_id"),
                profile.get("aws_secret_access_key"),
            ) {
                (Some(access), Some(secret)) => {
                    let mut credentials = Credentials::new(access.clone(), secret.clone());
                    if let Some(token) = profile.get("aws_session_token") {
                        credentials = credentials.with_session_token(token.clone());
                    }
                    Ok(credentials)
                }
                _ => Err(CredentialsError::not_configured(format!(
                    "profile {name:?}: no aws_access_key_id and aws_secret_access_key"
                ))),
            }
        })
    }
}

/// Tries providers in order: the first that yields credentials wins; one that is configured
/// but fails ends the search with its error (as the AWS SDKs do), one that is not configured
/// is skipped.
#[derive(Debug, Clone)]
pub struct ChainProvider {
    providers: Vec<(&'static str, SharedCredentialsProvider)>,
}

impl ChainProvider {
    /// An empty chain (it fails).
    pub fn new() -> Self {
        ChainProvider {
            providers: Vec::new(),
        }
    }

    /// Adds a provider, named for errors.
    pub fn or_else(mut self, name: &'static str, provider: impl ProvideCredentials) -> Self {
        self.providers.push((name, Arc::new(provider)));
        self
    }
}

impl Default for ChainProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ProvideCredentials for ChainProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let mut skipped = Vec::new();
            for (name, provider) in &self.providers {
                match provider.credentials().await {
                    Ok(credentials) => return Ok(credentials),
                    Err(err) if err.is_configured() => {
                        return Err(CredentialsError::new(format!("{name}: {err}")))
                    }
                    Err(err) => skipped.push(format!("{name}: {err}")),
                }
            }
            Err(CredentialsError::not_configured(format!(
                "no AWS credentials found ({})",
                skipped.join("; ")
            )))
        })
    }
}

/// Keeps the credentials of another provider until shortly before they expire (five minutes
/// by default, as the AWS SDKs refresh), so a signer asks the source once per refresh, not per
/// request. Concurrent callers wait for one refresh.
#[derive(Debug)]
pub struct CachingProvider {
    inner: SharedCredentialsProvider,
    margin: Duration,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachingProvider {
    /// Caches `inner`'s credentials.
    pub fn new(inner: impl ProvideCredentials) -> Self {
        CachingProvider {
            inner: Arc::new(inner),
            margin: Duration::from_secs(300),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// Refreshes this long before the expiry.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Drops the cached credentials (after AWS refused them, say).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}

impl ProvideCredentials for CachingProvider {
    fn credentials(&self) -> CredentialsFuture<'_> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some(credentials) = cached.as_ref() {
                let fresh = match credentials.expires() {
                    None => true,
                    Some(expires) => SystemTime::now() + self.margin < expires,
                };
                if fresh {
                    return Ok(credentials.clone());
                }
            }
            let credentials = self.inner.credentials().await?;
            *cached = Some(credentials.clone());
            Ok(credentials)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        lifetime: Option<Duration>,
    }

    impl ProvideCredentials for Counting {
        fn credentials(&self) -> CredentialsFuture<'_> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst);
                let mut c = Credentials::new(format!("AKID{n}"), "s");
                if let Some(lifetime) = self.lifetime {
                    c = c.with_expiry(SystemTime::now() + lifetime);
                }
                Ok(c)
            })
        }
    }

    #[tokio::test]
    async fn the_cache_refreshes_only_near_expiry() {
        let long = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: Some(Duration::from_secs(3600)),
        });
        let cache = CachingProvider::new(long.clone());
        for _ in 0..3 {
            assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID0");
        }
        assert_eq!(long.calls.load(Ordering::SeqCst), 1);
        // Credentials that expire within the margin are fetched again every time.
        let short = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: Some(Duration::from_secs(60)),
        });
        let cache = CachingProvider::new(short.clone());
        cache.credentials().await.unwrap();
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID1");
        cache.invalidate().await;
        assert_eq!(cache.credentials().await.unwrap().access_key_id(), "AKID2");
    }

    #[tokio::test]
    async fn the_environment_needs_both_keys() {
        let env = Env::from_vars([
            ("AWS_ACCESS_KEY_ID", "A"),
            ("AWS_SECRET_ACCESS_KEY", "S"),
            ("AWS_SESSION_TOKEN", "T"),
        ]);
        let c = EnvironmentProvider::new(env).credentials().await.unwrap();
        assert_eq!(
            (c.access_key_id(), c.secret_access_key(), c.session_token()),
            ("A", "S", Some("T"))
        );
        let half = Env::from_vars([("AWS_ACCESS_KEY_ID", "A")]);
        let err = EnvironmentProvider::new(half)
            .credentials()
            .await
            .unwrap_err();
        assert!(
            err.is_configured(),
            "half a key pair is an error, not a fallback"
        );
        let none = EnvironmentProvider::new(Env::from_vars::<_, &str, &str>([]))
            .credentials()
            .await
            .unwrap_err();
        assert!(!none.is_configured());
    }

    #[tokio::test]
    async fn a_chain_skips_unconfigured_sources_and_stops_at_a_broken_one() {
        let empty = Env::from_vars::<_, &str, &str>([]);
        let chain = ChainProvider::new()
            .or_else("environment", EnvironmentProvider::new(empty.clone()))
            .or_else("static", Credentials::new("B", "s"));
        assert_eq!(chain.credentials().await.unwrap().access_key_id(), "B");
        let broken = Env::from_vars([("AWS_SECRET_ACCESS_KEY", "S")]);
        let chain = ChainProvider::new()
            .or_else("environment", EnvironmentProvider::new(broken))
            .or_else("static", Credentials::new("B", "s"));
        let err = chain.credentials().await.unwrap_err();
        assert!(err.to_string().starts_with("environment: "), "{err}");
        let err = ChainProvider::new()
            .or_else("environment", EnvironmentProvider::new(empty))
            .credentials()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
    }
}
