//! Gloo's LDAP step (`ldap`, `ldapInternal`), feature `extauth-ldap`: HTTP basic credentials
//! checked by binding to the LDAP server as the user, then the user's groups read from its
//! entry.
//!
//! For each request, as Gloo documents it:
//!
//! 1. No `Authorization: Basic` credentials, or an empty password (which LDAP would take as an
//!    anonymous bind): `401`.
//! 2. Bind as `userDnTemplate` with `%s` replaced by the user name, after removing the
//!    characters that are special in DNs (`\ , # + < > ; " =`, NUL), so a user name cannot
//!    reach another entry. Invalid credentials: `401`.
//! 3. Unless `disableGroupChecking`: search the user entry (`base` scope, `searchFilter`,
//!    `(uid=*)` by default) for `membershipAttributeName` (`memberOf` by default, compared
//!    case-insensitively), bound as the user, or as the service account when
//!    `groupLookupSettings.checkGroupsWithServiceAccount` is set. One of its values must be
//!    one of `allowedGroups` (DNs compared ignoring ASCII case); otherwise, or when the entry
//!    is not found, `403` (so with no `allowedGroups`, everyone gets `403`, as in Gloo).
//! 4. Allowed: the user id is the user name.
//!
//! A server that cannot be reached, a service account that cannot bind, or any other LDAP
//! error answers `500` (Gloo documents `500` for a failed service account bind).
//!
//! # TLS
//!
//! `address` is `host:port` (plain LDAP, as Gloo documents it), or a URL: `ldap://host:port`,
//! or `ldaps://host:port` for LDAP over TLS (rustls). The server's certificate must be signed
//! by one of the system's CA certificates (`SSL_CERT_FILE` / `SSL_CERT_DIR` point at others,
//! as for OpenSSL) and name the host; Gloo's `Ldap` has no CA setting. A server whose
//! certificate is not trusted answers `500`, like any server that cannot be reached.
//!
//! # Connection pool
//!
//! Connections are pooled as Gloo's `pool` describes: up to `maxSize` (5 by default) idle
//! connections are kept, `initialSize` (2 by default) are opened when the step is first used,
//! and a check that finds no idle connection opens one on the fly; when it is done the
//! connection goes back to the pool, or is closed when the pool already holds `maxSize`. A
//! pooled connection carries the identity of its last bind, so every check binds first (as
//! the user, then as the service account when it reads the groups) and only reads after its
//! own bind; a connection that failed or timed out is closed, never pooled. `maxSize` `0`, or an
//! `initialSize` above `maxSize`, is refused.
//!
//! # Differences from Gloo
//!
//! * `ldaps://` URLs are an addition (Gloo documents `host:port` only); StartTLS is not
//!   offered.
//! * Connecting and each operation are bounded by the build options' call timeout (5 s by
//!   default); a timeout answers `500`.
//! * `initialSize` connections are opened on the first check, not when the config is loaded
//!   (the step can be built outside a tokio runtime).
//! * `401` answers carry no `WWW-Authenticate` challenge (Gloo documents none for LDAP).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use tokio::sync::OnceCell;

use super::basic::parse_basic;
use super::config;
use super::error::ConfigError;
use super::{Allowed, Authorize, BoxFuture, CheckRequest, Decision, Denied};

/// Gloo's default `membershipAttributeName`.
pub const DEFAULT_MEMBERSHIP_ATTRIBUTE: &str = "memberOf";
/// Gloo's default `searchFilter`.
pub const DEFAULT_SEARCH_FILTER: &str = "(uid=*)";

/// Gloo's default `pool.maxSize`.
pub const DEFAULT_POOL_MAX_SIZE: u32 = 5;
/// Gloo's default `pool.initialSize`.
pub const DEFAULT_POOL_INITIAL_SIZE: u32 = 2;

/// LDAP's `invalidCredentials` result code.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP's `noSuchObject` result code.
const NO_SUCH_OBJECT: u32 = 32;

/// The service account that reads group membership.
#[derive(Clone)]
struct ServiceAccount {
    dn: String,
    password: String,
}

/// Gloo's LDAP auth step; see the [module docs](self). Built from `ldap` / `ldapInternal` by
/// [`AuthConfig::from_config`](super::AuthConfig::from_config).
///
/// ```
/// use gloo_filters::extauth::config::ExtAuthConfig;
/// use gloo_filters::extauth::AuthConfig;
///
/// let config = AuthConfig::from_config(&ExtAuthConfig::from_json(r#"{
///     "authConfigRefName": "gloo-system.ldap",
///     "configs": [{"ldap": {
///         "address": "ldap.example:389",
///         "userDnTemplate": "uid=%s,ou=people,dc=solo,dc=io",
///         "allowedGroups": ["cn=managers,ou=groups,dc=solo,dc=io"]
///     }}]
/// }"#)?)?;
/// assert_eq!(config.id(), "gloo-system.ldap");
/// # Ok::<_, gloo_filters::extauth::ConfigError>(())
/// ```
pub struct LdapAuth {
    url: String,
    /// rustls' client configuration, for `ldaps://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    pool: Pool,
    template: (String, String),
    attribute: String,
    allowed_groups: Vec<String>,
    search_filter: String,
    check_groups: bool,
    service_account: Option<ServiceAccount>,
    timeout: Duration,
}

impl fmt::Debug for LdapAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LdapAuth")
            .field("url", &self.url)
            .field("allowed_groups", &self.allowed_groups)
            .finish_non_exhaustive()
    }
}

impl LdapAuth {
    pub(crate) fn from_config(
        at: &str,
        config: &config::Ldap,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        if config.group_lookup_settings.is_some() {
            return Err(ConfigError::new(
                format!("{at}.groupLookupSettings"),
                "the service account's credentials must be resolved: send this config as `ldapInternal`",
            ));
        }
        Self::build(at, config, None, timeout)
    }

    pub(crate) fn from_internal(
        at: &str,
        config: &config::LdapInternal,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let service_account = match &config.group_lookup_settings {
            Some(account) if account.check_groups_with_service_account => {
                if account.username.is_empty() || account.password.is_empty() {
                    return Err(ConfigError::new(
                        format!("{at}.groupLookupSettings"),
                        "checkGroupsWithServiceAccount needs the account's username and password",
                    ));
                }
                Some(ServiceAccount {
                    dn: account.username.clone(),
                    password: account.password.clone(),
                })
            }
            _ => None,
        };
        Self::build(at, config, service_account, timeout)
    }

    fn build<G>(
        at: &str,
        c: &config::LdapConfig<G>,
        service_account: Option<ServiceAccount>,
        timeout: Duration,
    ) -> Result<Self, ConfigError> {
        let url = match c.address.as_str() {
            "" => return Err(ConfigError::new(format!("{at}.address"), "required")),
            a if a.starts_with("ldap://") || a.starts_with("ldaps://") => a.to_owned(),
            a if a.contains("://") => {
                return Err(ConfigError::new(
                    format!("{at}.address"),
                    format!("{a:?}: expected host:port, an ldap:// or an ldaps:// URL"),
                ))
            }
            a => format!("ldap://{a}"),
        };
        let tls = if url.starts_with("ldaps://") {
            let config = crate::tls::client_config(crate::tls::system_roots(), None, None)
                .map_err(|e| ConfigError::new(format!("{at}.address"), e))?;
            Some(Arc::new(config))
        } else {
            None
        };
        let pool = c.pool.unwrap_or_default();
        let max = pool.max_size.unwrap_or(DEFAULT_POOL_MAX_SIZE);
        let initial = pool.initial_size.unwrap_or(DEFAULT_POOL_INITIAL_SIZE);
        if max == 0 {
            return Err(ConfigError::new(
                format!("{at}.pool.maxSize"),
                "must be at least 1",
            ));
        }
        if initial > max {
            return Err(ConfigError::new(
                format!("{at}.pool.initialSize"),
                format!("{initial} is more than pool.maxSize ({max})"),
            ));
        }
        let template = match c.user_dn_template.split_once("%s") {
            Some((before, after)) if !after.contains("%s") => (before.to_owned(), after.to_owned()),
            _ => {
                return Err(ConfigError::new(
                    format!("{at}.userDnTemplate"),
                    format!("{:?} must contain `%s` exactly once", c.user_dn_template),
                ))
            }
        };
        Ok(Self {
            url,
            tls,
            pool: Pool {
                idle: Mutex::new(Vec::new()),
                max: max as usize,
                initial: initial as usize,
                filled: OnceCell::new(),
            },
            template,
            attribute: non_empty(&c.membership_attribute_name, DEFAULT_MEMBERSHIP_ATTRIBUTE),
            allowed_groups: c.allowed_groups.clone(),
            search_filter: non_empty(&c.search_filter, DEFAULT_SEARCH_FILTER),
            check_groups: !c.disable_group_checking,
            service_account,
            timeout,
        })
    }

    fn user_dn(&self, user: &str) -> String {
        let clean: String = user
            .chars()
            .filter(|c| {
                !matches!(
                    c,
                    '\\' | ',' | '#' | '+' | '<' | '>' | ';' | '"' | '=' | '\0'
                )
            })
            .collect();
        format!("{}{}{}", self.template.0, clean, self.template.1)
    }

    /// A new connection to the server, not bound.
    async fn connect(&self) -> Result<ldap3::Ldap, LdapError> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.timeout);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(Arc::clone(tls));
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// A connection from the pool, or a new one when none is idle. The first call opens
    /// `initialSize` connections into the pool.
    async fn checkout(&self) -> Result<ldap3::Ldap, LdapError> {
        self.pool
            .filled
            .get_or_init(|| async {
                for _ in 0..self.pool.initial {
                    match self.connect().await {
                        Ok(ldap) => self.pool.lock().push(ldap),
                        Err(error) => {
                            tracing::warn!(url = %self.url, %error, "cannot fill the LDAP pool");
                            break;
                        }
                    }
                }
            })
            .await;
        loop {
            let Some(mut ldap) = self.pool.lock().pop() else {
                return self.connect().await;
            };
            // The server may have closed it while it was idle.
            if !ldap.is_closed() {
                return Ok(ldap);
            }
        }
    }

    /// Gives a connection that finished its check back to the pool, or closes it when the
    /// pool is full.
    async fn checkin(&self, mut ldap: ldap3::Ldap) {
        if ldap.is_closed() {
            return;
        }
        let overflow = {
            let mut idle = self.pool.lock();
            if idle.len() < self.pool.max {
                idle.push(ldap);
                None
            } else {
                Some(ldap)
            }
        };
        if let Some(mut ldap) = overflow {
            let _ = ldap.unbind().await;
        }
    }

    /// Binds `ldap` as `dn`: `false` when the credentials are wrong.
    async fn bind(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
        password: &str,
    ) -> Result<bool, LdapError> {
        ldap.with_timeout(self.timeout);
        let result = ldap.simple_bind(dn, password).await?;
        if result.rc == INVALID_CREDENTIALS {
            return Ok(false);
        }
        result.success()?;
        Ok(true)
    }

    /// The user's groups as `ldap` (bound) can read them; `None` when the entry is not found.
    async fn groups(
        &self,
        ldap: &mut ldap3::Ldap,
        dn: &str,
    ) -> Result<Option<Vec<String>>, LdapError> {
        ldap.with_timeout(self.timeout);
        let result = ldap
            .search(
                dn,
                Scope::Base,
                &self.search_filter,
                vec![self.attribute.as_str()],
            )
            .await?;
        if result.1.rc == NO_SUCH_OBJECT {
            return Ok(None);
        }
        let (entries, _) = result.success()?;
        let Some(entry) = entries.into_iter().next() else {
            return Ok(None);
        };
        let entry = SearchEntry::construct(entry);
        Ok(Some(
            entry
                .attrs
                .into_iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(&self.attribute))
                .flat_map(|(_, values)| values)
                .collect(),
        ))
    }

    async fn check(&self, user: String, password: String) -> Result<Decision, LdapError> {
        let mut ldap = self.checkout().await?;
        // A connection whose check failed is in an unknown state: it is dropped (closed).
        let decision = self.check_on(&mut ldap, user, &password).await?;
        self.checkin(ldap).await;
        Ok(decision)
    }

    /// The check on one connection, which every step binds before it reads.
    async fn check_on(
        &self,
        ldap: &mut ldap3::Ldap,
        user: String,
        password: &str,
    ) -> Result<Decision, LdapError> {
        let dn = self.user_dn(&user);
        if !self.bind(ldap, &dn, password).await? {
            return Ok(Decision::Deny(Denied::status(StatusCode::UNAUTHORIZED)));
        }
        if !self.check_groups {
            return Ok(allowed(user));
        }
        if let Some(account) = &self.service_account {
            if !self.bind(ldap, &account.dn, &account.password).await? {
                tracing::warn!(url = %self.url, "the LDAP service account cannot bind");
                return Ok(Decision::Deny(Denied::status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                )));
            }
        }
        let groups = self.groups(ldap, &dn).await?;
        let member = groups.unwrap_or_default().iter().any(|group| {
            self.allowed_groups
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(group))
        });
        Ok(if member {
            allowed(user)
        } else {
            Decision::Deny(Denied::status(StatusCode::FORBIDDEN))
        })
    }
}

/// Idle connections to one server (see the [module docs](self)).
struct Pool {
    idle: Mutex<Vec<ldap3::Ldap>>,
    max: usize,
    initial: usize,
    filled: OnceCell<()>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ldap3::Ldap>> {
        // The list stays consistent whatever panicked while holding it.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn non_empty(value: &str, default: &str) -> String {
    if value.is_empty() { default } else { value }.to_owned()
}

fn allowed(user: String) -> Decision {
    Decision::Allow(Allowed {
        user_id: Some(user),
        ..Allowed::default()
    })
}

impl Authorize for LdapAuth {
    fn authorize<'a>(&'a self, request: &'a CheckRequest) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let credentials = request
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| parse_basic(v.as_bytes()));
            let Some((user, password)) =
                credentials.filter(|(u, p)| !u.is_empty() && !p.is_empty())
            else {
                return Decision::Deny(Denied::status(StatusCode::UNAUTHORIZED));
            };
            match self.check(user, password).await {
                Ok(decision) => decision,
                Err(error) => {
                    tracing::warn!(url = %self.url, %error, "LDAP check failed");
                    Decision::Deny(Denied::status(StatusCode::INTERNAL_SERVER_ERROR))
                }
            }
        })
    }
}
