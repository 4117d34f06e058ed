//! `AuthConfig`: named steps run in order, or combined by a boolean expression.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

use super::access_token::AccessTokenValidation;
use super::apikey::ApiKeyAuth;
use super::basic::BasicAuth;
use super::client::{AuthHttpClient, HyperAuthClient};
use super::config::{Config, ExtAuthConfig, OAuth2Config};
use super::error::ConfigError;
use super::expr::{self, Expr};
use super::passthrough::PassThroughHttp;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};
use crate::jwt::{HyperJwksFetcher, JwksFetcher};

/// The default limit on one introspection or userinfo call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What building steps from an [`ExtAuthConfig`] needs besides the config: the clients that
/// reach identity providers. Cheap to clone.
#[derive(Clone)]
pub struct BuildOptions {
    http: Arc<dyn AuthHttpClient>,
    call_timeout: Duration,
    jwks_fetcher: Arc<dyn JwksFetcher>,
}

impl BuildOptions {
    /// The default clients: gloo-filters' pooled client for introspection, userinfo and key sets
    /// (`https` URLs need the `https` feature).
    pub fn new() -> Self {
        Self {
            http: Arc::new(HyperAuthClient::new()),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            jwks_fetcher: Arc::new(HyperJwksFetcher::new()),
        }
    }

    /// Sends introspection and userinfo calls with `client`.
    pub fn http_client(mut self, client: impl AuthHttpClient) -> Self {
        self.http = Arc::new(client);
        self
    }

    /// How long an introspection or userinfo call may take (default 5 s); a call that takes
    /// longer refuses the token.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Fetches remote key sets with `fetcher`.
    pub fn jwks_fetcher(mut self, fetcher: impl JwksFetcher) -> Self {
        self.jwks_fetcher = Arc::new(fetcher);
        self
    }
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuildOptions").finish_non_exhaustive()
    }
}

struct Step {
    name: String,
    auth: Arc<dyn Authorize>,
}

/// One `AuthConfig`: named auth steps and how they combine, with Gloo's ext auth server
/// semantics.
///
/// * **Without `booleanExpr`** every step must allow, checked in order; the first denial is
///   the answer and later steps are not run.
/// * **With `booleanExpr`** the expression decides (see the module docs for its grammar);
///   steps it does not reach are not run. When it comes out false, the answer is the denial
///   of the last step that denied, or a bare `403` when none did (`!a` with `a` allowing).
/// * When the request is allowed, the headers of every step that allowed are merged in the
///   order the steps ran (a later step's value for a header replaces an earlier one's), and
///   the last user id found is the user id.
/// * `failOnRedirect` turns a final redirect answer (an OIDC login, `3xx`) into a bare `401`.
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::{AuthConfig, CheckRequest, Decision};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.either",
///     "booleanExpr": "basic || key",
///     "configs": [
///         {"name": "basic", "basicAuth": {"apr": {"users": {
///             "user": {"salt": "TYiryv0/", "hashedPassword": "8BvzLUO9IfGPGGsPnAgSu1"}}}}},
///         {"name": "key", "apiKeyAuth": {"validApiKeys": {"s3cr3t": {"username": "robot"}}}}
///     ]
/// }"#)?)?;
///
/// let mut request = CheckRequest::default();
/// request.headers.insert("api-key", "s3cr3t".parse()?);
/// let Decision::Allow(allowed) = config.check(&request).await else { panic!("denied") };
/// assert_eq!(allowed.user_id.as_deref(), Some("robot"));
///
/// // Neither: the last denial (the API key step's 401) answers.
/// let Decision::Deny(denied) = config.check(&CheckRequest::default()).await else { panic!("allowed") };
/// assert_eq!(denied.status, 401);
/// assert_eq!(denied.headers["www-authenticate"], "API key is missing or invalid");
/// # Ok(())
/// # }
/// ```
pub struct AuthConfig {
    id: String,
    steps: Vec<Step>,
    expr: Option<Expr>,
    fail_on_redirect: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("id", &self.id)
            .field(
                "steps",
                &self.steps.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("boolean_expr", &self.expr.is_some())
            .field("fail_on_redirect", &self.fail_on_redirect)
            .finish()
    }
}

/// Builds an [`AuthConfig`] from steps of your own (any [`Authorize`]).
///
/// ```
/// use gloo_filters::extauth::{ApiKeyAuth, AuthConfig, BasicAuth, PasswordHash};
///
/// let config = AuthConfig::builder("my-config")
///     .step("basic", BasicAuth::new("gloo", PasswordHash::Apr1)?)
///     .step("key", ApiKeyAuth::new("x-api-key")?)
///     .boolean_expr("basic || key")
///     .build()?;
/// assert_eq!(config.id(), "my-config");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
pub struct AuthConfigBuilder {
    id: String,
    steps: Vec<Step>,
    boolean_expr: Option<String>,
    fail_on_redirect: bool,
}

impl fmt::Debug for AuthConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfigBuilder")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuthConfigBuilder {
    /// Appends a step; `name` is what `booleanExpr` calls it.
    pub fn step(mut self, name: impl Into<String>, auth: impl Authorize) -> Self {
        self.steps.push(Step {
            name: name.into(),
            auth: Arc::new(auth),
        });
        self
    }

    /// Appends a shared step.
    pub fn shared_step(mut self, name: impl Into<String>, auth: Arc<dyn Authorize>) -> Self {
        self.steps.push(Step {
            name: name.into(),
            auth,
        });
        self
    }

    /// Combines the steps by `expr` instead of requiring all; an empty one requires all.
    pub fn boolean_expr(mut self, expr: impl Into<String>) -> Self {
        self.boolean_expr = Some(expr.into());
        self
    }

    /// Answer `401` instead of a redirect.
    pub fn fail_on_redirect(mut self, fail: bool) -> Self {
        self.fail_on_redirect = fail;
        self
    }

    /// Checks names and the expression.
    pub fn build(self) -> Result<AuthConfig, ConfigError> {
        if self.steps.is_empty() {
            return Err(ConfigError::new(
                "configs",
                "at least one config is required",
            ));
        }
        let mut names = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if names.insert(step.name.clone(), i).is_some() {
                return Err(ConfigError::new(
                    format!("configs[{i}].name"),
                    format!("another config is already named `{}`", step.name),
                ));
            }
        }
        let expr = match self.boolean_expr.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) => Some(expr::parse(
                self.boolean_expr.as_deref().unwrap_or_default(),
                &names,
            )?),
        };
        Ok(AuthConfig {
            id: self.id,
            steps: self.steps,
            expr,
            fail_on_redirect: self.fail_on_redirect,
        })
    }
}

/// What an expression's evaluation gathered so far.
#[derive(Default)]
struct Outcome {
    allowed: Allowed,
    last_denial: Option<Denied>,
}

impl Outcome {
    fn merge(&mut self, step: Allowed) {
        let mut previous = None;
        for (name, value) in step.upstream_headers {
            // `None` continues the previous name: all of one name's values replace ours.
            let name = match name {
                Some(name) => {
                    self.allowed.upstream_headers.remove(&name);
                    previous = Some(name.clone());
                    name
                }
                None => match &previous {
                    Some(name) => name.clone(),
                    None => continue,
                },
            };
            self.allowed.upstream_headers.append(name, value);
        }
        self.allowed
            .remove_upstream_headers
            .extend(step.remove_upstream_headers);
        for (name, value) in &step.response_headers {
            self.allowed
                .response_headers
                .append(name.clone(), value.clone());
        }
        if step.user_id.is_some() {
            self.allowed.user_id = step.user_id;
        }
    }
}

impl AuthConfig {
    /// Starts a config of your own steps, identified by `id`.
    pub fn builder(id: impl Into<String>) -> AuthConfigBuilder {
        AuthConfigBuilder {
            id: id.into(),
            steps: Vec::new(),
            boolean_expr: None,
            fail_on_redirect: false,
        }
    }

    /// Builds Gloo's `ExtAuthConfig` with the default clients.
    pub fn from_config(config: &ExtAuthConfig) -> Result<Self, ConfigError> {
        Self::from_config_with(config, &BuildOptions::new())
    }

    /// Builds Gloo's `ExtAuthConfig`; an error names the field (`configs[2].basicAuth.apr`).
    /// Unnamed configs are named `config_<index>`, as in Gloo.
    pub fn from_config_with(
        config: &ExtAuthConfig,
        options: &BuildOptions,
    ) -> Result<Self, ConfigError> {
        let mut builder = Self::builder(config.auth_config_ref_name.clone())
            .fail_on_redirect(config.fail_on_redirect);
        if let Some(expr) = &config.boolean_expr {
            builder = builder.boolean_expr(expr.clone());
        }
        for (i, step) in config.configs.iter().enumerate() {
            let path = format!("configs[{i}]");
            let name = step.name.clone().unwrap_or_else(|| format!("config_{i}"));
            builder = builder.shared_step(name, build_step(&path, step, options)?);
        }
        builder.build()
    }

    /// The config's id (`authConfigRefName`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Checks `request` against the config.
    pub async fn check(&self, request: &CheckRequest) -> Decision {
        let mut outcome = Outcome::default();
        let allowed = match &self.expr {
            None => {
                for step in &self.steps {
                    match step.auth.authorize(request).await {
                        Decision::Allow(allowed) => outcome.merge(allowed),
                        Decision::Deny(denied) => return self.deny(denied),
                    }
                }
                true
            }
            Some(expr) => self.eval(expr, request, &mut outcome).await,
        };
        if allowed {
            Decision::Allow(outcome.allowed)
        } else {
            self.deny(
                outcome
                    .last_denial
                    .unwrap_or_else(|| Denied::status(StatusCode::FORBIDDEN)),
            )
        }
    }

    fn deny(&self, denied: Denied) -> Decision {
        if self.fail_on_redirect && denied.status.is_redirection() {
            return Decision::Deny(Denied::status(StatusCode::UNAUTHORIZED));
        }
        Decision::Deny(denied)
    }

    fn eval<'a>(
        &'a self,
        expr: &'a Expr,
        request: &'a CheckRequest,
        outcome: &'a mut Outcome,
    ) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            match expr {
                Expr::Step(i) => {
                    let Some(step) = self.steps.get(*i) else {
                        return false;
                    };
                    match step.auth.authorize(request).await {
                        Decision::Allow(allowed) => {
                            outcome.merge(allowed);
                            true
                        }
                        Decision::Deny(denied) => {
                            outcome.last_denial = Some(denied);
                            false
                        }
                    }
                }
                Expr::Not(inner) => !self.eval(inner, request, outcome).await,
                Expr::And(a, b) => {
                    self.eval(a, request, outcome).await && self.eval(b, request, outcome).await
                }
                Expr::Or(a, b) => {
                    self.eval(a, request, outcome).await || self.eval(b, request, outcome).await
                }
            }
        })
    }
}

impl Authorize for AuthConfig {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(self.check(request))
    }
}

fn unsupported(path: String, what: &str) -> ConfigError {
    ConfigError::new(path, format!("{what} is not supported by gloo-filters"))
}

/// Builds one `configs[i]` (exactly one auth type).
fn build_step(
    path: &str,
    config: &Config,
    options: &BuildOptions,
) -> Result<Arc<dyn Authorize>, ConfigError> {
    let set = [
        ("oauth2", config.oauth2.is_some()),
        ("basicAuth", config.basic_auth.is_some()),
        ("basicAuthInternal", config.basic_auth_internal.is_some()),
        ("apiKeyAuth", config.api_key_auth.is_some()),
        ("oauth", config.oauth.is_some()),
        ("pluginAuth", config.plugin_auth.is_some()),
        ("opaAuth", config.opa_auth.is_some()),
        ("ldap", config.ldap.is_some()),
        ("ldapInternal", config.ldap_internal.is_some()),
        ("jwt", config.jwt.is_some()),
        ("passThroughAuth", config.pass_through_auth.is_some()),
        ("hmacAuth", config.hmac_auth.is_some()),
        ("opaServerAuth", config.opa_server_auth.is_some()),
        ("portalAuth", config.portal_auth.is_some()),
        ("passthroughInternal", config.passthrough_internal.is_some()),
    ];
    let chosen: Vec<&str> = set
        .iter()
        .filter(|(_, on)| *on)
        .map(|(name, _)| *name)
        .collect();
    let kind = match chosen.as_slice() {
        [one] => *one,
        [] => return Err(ConfigError::new(path, "no auth type is set")),
        many => {
            return Err(ConfigError::new(
                path,
                format!("only one auth type may be set, found {}", many.join(", ")),
            ))
        }
    };
    let at = format!("{path}.{kind}");
    Ok(match (kind, config) {
        (
            _,
            Config {
                basic_auth: Some(basic),
                ..
            },
        ) => Arc::new(BasicAuth::from_config(&at, basic)?),
        (
            _,
            Config {
                basic_auth_internal: Some(basic),
                ..
            },
        ) => Arc::new(BasicAuth::from_internal(&at, basic)?),
        (
            _,
            Config {
                api_key_auth: Some(keys),
                ..
            },
        ) => Arc::new(ApiKeyAuth::from_config(&at, keys)?),
        (
            _,
            Config {
                oauth2: Some(oauth2),
                ..
            },
        ) => match oauth2 {
            OAuth2Config::AccessTokenValidationConfig(validation) => {
                Arc::new(AccessTokenValidation::from_config(
                    &format!("{at}.accessTokenValidationConfig"),
                    validation,
                    Arc::clone(&options.http),
                    options.call_timeout,
                    Arc::clone(&options.jwks_fetcher),
                )?)
            }
            #[cfg(feature = "extauth-oidc")]
            OAuth2Config::OidcAuthorizationCode(value) => {
                let at = format!("{at}.oidcAuthorizationCode");
                let config = super::oidc::OidcAuthorizationCodeConfig::from_value(value.clone())
                    .map_err(|e| ConfigError::new(&at, e.to_string()))?;
                Arc::new(
                    super::oidc::OidcAuthorizationCode::new(config)
                        .map_err(|e| ConfigError::new(&at, e.to_string()))?,
                )
            }
            #[cfg(not(feature = "extauth-oidc"))]
            OAuth2Config::OidcAuthorizationCode(_) => {
                return Err(ConfigError::new(
                    format!("{at}.oidcAuthorizationCode"),
                    "the OIDC authorization code flow needs gloo-filters' `extauth-oidc` feature",
                ))
            }
            OAuth2Config::Oauth2Config(_) => {
                return Err(unsupported(
                    format!("{at}.oauth2Config"),
                    "the plain OAuth2 flow",
                ))
            }
        },
        (
            _,
            Config {
                pass_through_auth: Some(pass),
                ..
            },
        ) => passthrough(&at, pass, None, options)?,
        (
            _,
            Config {
                passthrough_internal: Some(internal),
                ..
            },
        ) => {
            let Some(pass) = &internal.pass_through_auth else {
                return Err(ConfigError::new(
                    format!("{at}.passThroughAuth"),
                    "required",
                ));
            };
            let at_data = format!("{at}.tlsConfigData");
            let data = internal
                .tls_config_data
                .as_ref()
                .map(|d| (at_data.as_str(), d));
            passthrough(&format!("{at}.passThroughAuth"), pass, data, options)?
        }
        #[cfg(feature = "extauth-opa")]
        (
            _,
            Config {
                opa_auth: Some(opa),
                ..
            },
        ) => Arc::new(super::opa::OpaAuth::from_config(&at, opa)?),
        #[cfg(not(feature = "extauth-opa"))]
        ("opaAuth", _) => {
            return Err(ConfigError::new(
                at,
                "OPA needs gloo-filters' `extauth-opa` feature",
            ))
        }
        #[cfg(feature = "extauth-ldap")]
        (
            _,
            Config {
                ldap: Some(ldap), ..
            },
        ) => Arc::new(super::ldap::LdapAuth::from_config(
            &at,
            ldap,
            options.call_timeout,
        )?),
        #[cfg(feature = "extauth-ldap")]
        (
            _,
            Config {
                ldap_internal: Some(ldap),
                ..
            },
        ) => Arc::new(super::ldap::LdapAuth::from_internal(
            &at,
            ldap,
            options.call_timeout,
        )?),
        #[cfg(not(feature = "extauth-ldap"))]
        ("ldap" | "ldapInternal", _) => {
            return Err(ConfigError::new(
                at,
                "LDAP needs gloo-filters' `extauth-ldap` feature",
            ))
        }
        _ => return Err(unsupported(at, &format!("`{kind}`"))),
    })
}

/// A passthrough step (`passThroughAuth`, or `passthroughInternal`'s with its TLS `data`).
fn passthrough(
    at: &str,
    pass: &super::config::PassThroughAuth,
    data: Option<super::passthrough::TlsData<'_>>,
    options: &BuildOptions,
) -> Result<Arc<dyn Authorize>, ConfigError> {
    Ok(match (&pass.grpc, &pass.http) {
        (Some(_), None) => grpc_passthrough(at, pass, data)?,
        (None, Some(_)) => Arc::new(PassThroughHttp::build(
            at,
            pass,
            Arc::clone(&options.http),
            data,
        )?),
        _ => return Err(ConfigError::new(at, "set exactly one of grpc, http")),
    })
}

#[cfg(feature = "extauth-passthrough-grpc")]
fn grpc_passthrough(
    at: &str,
    config: &super::config::PassThroughAuth,
    data: Option<super::passthrough::TlsData<'_>>,
) -> Result<Arc<dyn Authorize>, ConfigError> {
    Ok(Arc::new(super::passthrough::PassThroughGrpc::build(
        at, config, data,
    )?))
}

#[cfg(not(feature = "extauth-passthrough-grpc"))]
fn grpc_passthrough(
    at: &str,
    _config: &super::config::PassThroughAuth,
    _data: Option<super::passthrough::TlsData<'_>>,
) -> Result<Arc<dyn Authorize>, ConfigError> {
    Err(ConfigError::new(
        format!("{at}.grpc"),
        "gRPC passthrough needs gloo-filters' `extauth-passthrough-grpc` feature",
    ))
}
